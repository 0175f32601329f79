"""Baselines reported beside every model: what would we get with the simple, familiar tools?

- :class:`LogisticBaseline`: L2 logistic regression (log1p on counts, median imputation with
  missing-value indicators, standardisation): the statistician's default.
- :class:`PointsScale`: a transparent instrument of at most six integer-weighted factors, the
  kind of paper checklist agencies use today (points per factor, total points -> risk).

Both take a polars frame and return the probability of the positive class; ``describe()``
gives the human-readable content (coefficients / points table) for reports and model cards.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any, Self

import numpy as np
import polars as pl
from numpy.typing import NDArray
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from riskcast.errors import InputError
from training.calibration import fit_logistic_1d, sigmoid

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


def to_matrix(X: pl.DataFrame, features: list[str], who: str) -> FloatArray:  # noqa: N803 (sklearn's names)
    """The named columns as a float matrix (nulls -> NaN); a clear error for missing/text ones."""
    missing = [f for f in features if f not in X.columns]
    if missing:
        raise InputError(f"{who}: columns not in the frame: {', '.join(missing)}")
    bad = [f for f in features if not (X.schema[f].is_numeric() or X.schema[f] == pl.Boolean)]
    if bad:
        raise InputError(f"{who}: columns must be numeric or boolean, not text: {', '.join(bad)}")
    if not features:
        return np.empty((X.height, 0), dtype=np.float64)
    frame = X.select([pl.col(f).cast(pl.Float64) for f in features])
    return np.asarray(frame.to_numpy(), dtype=np.float64)


def _check_y(y: NDArray[Any], n: int, who: str) -> FloatArray:
    yv = np.asarray(y, dtype=np.float64).ravel()
    if yv.size != n:
        raise InputError(f"{who}: {n} rows but {yv.size} outcomes")
    if not np.all(np.isin(yv, (0.0, 1.0))) or np.unique(yv).size < 2:
        raise InputError(f"{who}: outcomes must be 0/1 and hold both classes")
    return yv


def log1p_columns(x: FloatArray, mask: BoolArray) -> FloatArray:
    """``log1p`` on the masked columns (negatives clipped to 0 first; NaN stays NaN)."""
    out = np.array(x, dtype=np.float64, copy=True)
    out[:, mask] = np.log1p(np.clip(out[:, mask], 0.0, None))
    return out


@contextlib.contextmanager
def _empty_features_dropped() -> Iterator[None]:
    """The imputer drops a feature with no observed value in the training rows (nothing to
    learn from it; `LogisticBaseline.describe` lists the inputs kept) and warns about it on every
    fit and transform; that is the intended behaviour, not something to act on, so it is quiet."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Skipping features without any observed values", category=UserWarning
        )
        yield


class LogisticBaseline:
    """L2 logistic regression: log1p(counts) -> median imputation + indicators -> z-scores."""

    def __init__(self, features: list[str], count_features: list[str], C: float = 1.0) -> None:  # noqa: N803 (sklearn's names)
        unknown = sorted(set(count_features) - set(features))
        if unknown:
            raise InputError(f"LogisticBaseline: count features not in features: {unknown}")
        self.features = list(features)
        self.count_features = list(count_features)
        self.C = C
        self.pipeline_: Pipeline | None = None

    def fit(self, X: pl.DataFrame, y: NDArray[Any]) -> Self:  # noqa: N803 (sklearn's names)
        x = to_matrix(X, self.features, "LogisticBaseline")
        yv = _check_y(y, x.shape[0], "LogisticBaseline")
        mask = np.array([f in set(self.count_features) for f in self.features], dtype=bool)
        self.pipeline_ = Pipeline(
            [
                ("log1p", FunctionTransformer(log1p_columns, kw_args={"mask": mask})),
                ("impute", SimpleImputer(strategy="median", add_indicator=True)),
                ("scale", StandardScaler()),
                ("logistic", LogisticRegression(C=self.C, l1_ratio=0.0, max_iter=2000)),
            ]
        )
        with _empty_features_dropped():
            self.pipeline_.fit(x, yv)
        return self

    def _fitted(self) -> Pipeline:
        if self.pipeline_ is None:
            raise InputError("LogisticBaseline: call fit() before predict_proba() or describe()")
        return self.pipeline_

    def predict_proba(self, X: pl.DataFrame) -> FloatArray:  # noqa: N803 (sklearn's names)
        x = to_matrix(X, self.features, "LogisticBaseline")
        with _empty_features_dropped():
            return np.asarray(self._fitted().predict_proba(x)[:, 1], dtype=np.float64)

    def describe(self) -> dict[str, Any]:
        """Intercept and coefficients per standard deviation of each (transformed) input."""
        pipe = self._fitted()
        names = pipe.named_steps["impute"].get_feature_names_out(np.array(self.features))
        model = pipe.named_steps["logistic"]
        coefs = {
            str(n).replace("missingindicator_", "missing: "): round(float(c), 4)
            for n, c in zip(names, model.coef_[0], strict=True)
        }
        return {
            "model": "L2 logistic regression (standardised inputs)",
            "log1p_features": self.count_features,
            "intercept": round(float(model.intercept_[0]), 4),
            "coefficients_per_sd": dict(sorted(coefs.items(), key=lambda kv: -abs(kv[1]))),
        }


class _Factor:
    """One feature cut into ordered risk bands by thresholds; ``points`` per band step."""

    def __init__(self, feature: str, direction: int, thresholds: list[float]) -> None:
        self.feature = feature
        self.direction = direction
        self.thresholds = thresholds  # on direction * x, increasing
        self.points_per_band = 0

    def bands(self, x: FloatArray) -> FloatArray:
        z = self.direction * x
        with np.errstate(invalid="ignore"):
            hit = [np.nan_to_num(z, nan=-np.inf) > t for t in self.thresholds]
        return np.sum(hit, axis=0).astype(np.float64) if hit else np.zeros_like(x)

    def rows(self) -> list[dict[str, Any]]:
        op = ">" if self.direction > 0 else "<"
        out = []
        for band, t in enumerate(self.thresholds, start=1):
            value = self.direction * t
            shown = int(value) if float(value).is_integer() else round(value, 3)
            out.append(
                {
                    "factor": f"{self.feature} {op} {shown}",
                    "points": min(3, band * self.points_per_band),
                }
            )
        return out


class PointsScale:
    """A transparent points instrument: at most ``max_factors`` features, 0-3 points each.

    Fitting, on the training data only:

    1. each feature is cut at its 50th/75th/90th percentiles (observed values, so the table
       reads "priors > 3"), oriented so that a higher band
       means more risk (``directions``: +1 higher value = more risk, -1 lower value = more risk;
       a feature without a direction takes the sign of its univariate association); a missing
       value is band 0;
    2. an L2 logistic regression on all bands (standardised) picks the ``max_factors``
       strongest features with a positive weight; a refit on those gives log-odds per band;
    3. points per band step = that weight in units of one third of the strongest factor's full
       range, rounded to an integer and capped at 3 points per factor;
    4. total points -> probability: the empirical rate per total, shrunk towards a logistic fit
       on the total (``smoothing`` pseudo-rows) and made non-decreasing (isotonic).
    """

    QUANTILES = (0.5, 0.75, 0.9)

    def __init__(
        self,
        features: list[str],
        directions: dict[str, int],
        max_factors: int = 6,
        smoothing: float = 20.0,
        max_fit_rows: int = 200_000,
        seed: int = 0,
    ) -> None:
        bad = {f: d for f, d in directions.items() if d not in (-1, 1)}
        if bad:
            raise InputError(f"PointsScale: directions must be +1 or -1, got {bad}")
        if not 1 <= max_factors <= 6:
            raise InputError("PointsScale: max_factors must be between 1 and 6")
        self.features = list(features)
        self.directions = dict(directions)
        self.max_factors = max_factors
        self.smoothing = smoothing
        self.max_fit_rows = max_fit_rows
        self.seed = seed
        self.factors_: list[_Factor] = []
        self.table_: dict[int, float] = {}
        self.prior_: tuple[float, float] = (0.0, 0.0)

    def _direction(self, name: str, x: FloatArray, y: FloatArray) -> int:
        if name in self.directions:
            return self.directions[name]
        ok = ~np.isnan(x)
        if ok.sum() < 2 or np.nanstd(x[ok]) == 0:
            return 1
        return 1 if np.corrcoef(x[ok], y[ok])[0, 1] >= 0 else -1

    def fit(self, X: pl.DataFrame, y: NDArray[Any]) -> Self:  # noqa: N803 (sklearn's names)
        x = to_matrix(X, self.features, "PointsScale")
        yv = _check_y(y, x.shape[0], "PointsScale")
        if x.shape[0] > self.max_fit_rows:  # the weights do not need a million rows
            idx = np.random.default_rng(self.seed).choice(x.shape[0], self.max_fit_rows, False)
            xs, ys = x[idx], yv[idx]
        else:
            xs, ys = x, yv
        candidates: list[_Factor] = []
        for j, name in enumerate(self.features):
            col = xs[:, j]
            if np.all(np.isnan(col)):
                continue
            d = self._direction(name, col, ys)
            z = d * col
            qs = sorted({float(q) for q in np.nanquantile(z, self.QUANTILES, method="lower")})
            factor = _Factor(name, d, [t for t in qs if np.any(z > t)])  # band must be reachable
            if factor.thresholds:
                candidates.append(factor)
        if not candidates:
            raise InputError("PointsScale: no feature varies in the training data")
        columns = [f.bands(xs[:, self.features.index(f.feature)]) for f in candidates]
        bands = np.column_stack(columns)
        sd = bands.std(axis=0)
        sd[sd == 0] = 1.0
        screen = LogisticRegression(C=1.0, l1_ratio=0.0, max_iter=2000).fit(bands / sd, ys)
        strength = screen.coef_[0]
        order = [i for i in np.argsort(-strength) if strength[i] > 0][: self.max_factors]
        if not order:
            raise InputError("PointsScale: no feature is associated with the outcome")
        chosen = [candidates[i] for i in order]
        refit = LogisticRegression(C=1.0, l1_ratio=0.0, max_iter=2000).fit(bands[:, order], ys)
        weights = np.maximum(refit.coef_[0], 0.0)
        span = max(w * len(f.thresholds) for w, f in zip(weights, chosen, strict=True))
        unit = span / 3.0 if span > 0 else 1.0
        for w, f in zip(weights, chosen, strict=True):
            f.points_per_band = int(np.clip(np.rint(w / unit), 0, 3))
        self.factors_ = [f for f in chosen if f.points_per_band > 0] or chosen[:1]
        if all(f.points_per_band == 0 for f in self.factors_):
            self.factors_[0].points_per_band = 1
        totals = self._totals(x)
        self._fit_table(totals, yv)
        return self

    def _totals(self, x: FloatArray) -> NDArray[np.int64]:
        total = np.zeros(x.shape[0], dtype=np.int64)
        for f in self.factors_:
            b = f.bands(x[:, self.features.index(f.feature)])
            total += np.minimum(3, b.astype(np.int64) * f.points_per_band)
        return total

    def _fit_table(self, totals: NDArray[np.int64], y: FloatArray) -> None:
        self.prior_ = fit_logistic_1d(totals.astype(np.float64), y)
        a, b = self.prior_
        top = sum(min(3, len(f.thresholds) * f.points_per_band) for f in self.factors_)
        grid = np.arange(top + 1)
        n = np.bincount(totals, minlength=top + 1)[: top + 1].astype(np.float64)
        pos = np.bincount(totals, weights=y, minlength=top + 1)[: top + 1]
        prior = sigmoid(a + b * grid.astype(np.float64))
        m = self.smoothing
        weight = n + m
        rate = np.where(weight > 0, (pos + m * prior) / np.maximum(weight, 1e-12), prior)
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True)
        smooth = iso.fit_transform(
            grid.astype(np.float64), rate, sample_weight=np.maximum(weight, 1e-6)
        )
        self.table_ = {int(t): float(p) for t, p in zip(grid, smooth, strict=True)}

    def predict_proba(self, X: pl.DataFrame) -> FloatArray:  # noqa: N803 (sklearn's names)
        if not self.factors_:
            raise InputError("PointsScale: call fit() before predict_proba()")
        totals = self._totals(to_matrix(X, self.features, "PointsScale"))
        lookup = np.array([self.table_[t] for t in sorted(self.table_)], dtype=np.float64)
        return np.asarray(lookup[np.clip(totals, 0, lookup.size - 1)], dtype=np.float64)

    def points(self, X: pl.DataFrame) -> NDArray[np.int64]:  # noqa: N803 (sklearn's names)
        """Total points per row: what the officer would add up on paper."""
        return self._totals(to_matrix(X, self.features, "PointsScale"))

    def describe(self) -> dict[str, Any]:
        """The points table (one row per threshold) and the risk per total."""
        if not self.factors_:
            raise InputError("PointsScale: call fit() before describe()")
        rows: list[dict[str, Any]] = []
        for f in self.factors_:
            previous = 0
            for row in f.rows():
                step = row["points"] - previous
                previous = row["points"]
                if step:
                    rows.append({"factor": row["factor"], "points": step})
        return {
            "model": "points scale (integer points per factor, risk per total)",
            "points": rows,
            "risk_by_total": {t: round(p, 4) for t, p in self.table_.items()},
        }
