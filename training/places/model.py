"""The places model: a LightGBM count model (Poisson or Tweedie, log link) with the horizon as
one input, its 80 % intervals and its reasons, saved as plain files.

Stored as ``booster.txt`` (LightGBM's own text format) and ``model.json`` (the inputs in order,
their descriptions, the objective, the interval dispersion and the metadata of the run), so a
registered version can be read back by `PlacesModel.load` without unpickling anything.

**Intervals.** Counts of a cell-week are over-dispersed relative to Poisson (a near-repeat
cascade clusters incidents), so the interval is the central ``level`` interval of a negative
binomial with the forecast as its mean and variance ``mu + alpha·mu²``; ``alpha`` is the
moment estimate from out-of-fold forecasts of the last tuning fold (`fit_dispersion`), 0 giving
Poisson quantiles. Counts are integers, so the interval's coverage is at least ``level`` up to
the discreteness of small counts; the run reports the coverage actually obtained out of time.

**Reasons.** LightGBM's ``pred_contrib`` (TreeSHAP) splits each forecast's log expected count
into one contribution per input; the reasons of a cell-week are the ``top`` inputs with the
largest absolute contribution, with the spec's description a planner can read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy import stats

from riskcast.errors import InputError

FloatArray = NDArray[np.float64]
BOOSTER_FILE = "booster.txt"
META_FILE = "model.json"
ARTIFACT_KEY = "places_model"
HORIZON = "horizon"
"""The input that tells the single model which week ahead a row is for."""


def to_matrix(frame: pl.DataFrame, features: list[str]) -> FloatArray:
    """The named inputs as a float matrix (nulls -> NaN); a missing input names itself."""
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise InputError(f"places model: inputs not in the cell frame: {', '.join(missing)}")
    if not features:
        return np.empty((frame.height, 0))
    return np.asarray(
        frame.select(pl.col(f).cast(pl.Float64) for f in features).to_numpy(), dtype=np.float64
    )


def fit_dispersion(y: FloatArray, mu: FloatArray) -> float:
    """The negative-binomial ``alpha`` with ``E[(y - mu)² - y] = alpha·mu²`` (moments over all
    rows), never negative: 0 means the counts are no more spread than Poisson."""
    mu = np.maximum(np.asarray(mu, dtype=np.float64), 1e-9)
    y = np.asarray(y, dtype=np.float64)
    denom = float(np.sum(mu**2))
    if denom <= 0:
        return 0.0
    return max(0.0, float(np.sum((y - mu) ** 2 - y)) / denom)


def count_interval(mu: FloatArray, alpha: float, level: float) -> tuple[FloatArray, FloatArray]:
    """The central ``level`` interval of a count with mean ``mu``: negative binomial with
    dispersion ``alpha`` (Poisson when ``alpha`` is 0)."""
    mu = np.maximum(np.asarray(mu, dtype=np.float64), 1e-12)
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
    if alpha <= 1e-9:
        lower = stats.poisson.ppf(lo_q, mu)
        upper = stats.poisson.ppf(hi_q, mu)
    else:
        n = 1.0 / alpha
        p = n / (n + mu)
        lower = stats.nbinom.ppf(lo_q, n, p)
        upper = stats.nbinom.ppf(hi_q, n, p)
    return np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)


@dataclass
class PlacesModel:
    """The booster and everything needed to use it: inputs in order, their descriptions, the
    interval's dispersion and level, and metadata recorded with the run."""

    booster: lgb.Booster
    features: list[str]
    descriptions: dict[str, str]
    objective: str
    horizons: int
    alpha: float = 0.0
    level: float = 0.8
    metadata: dict[str, Any] = field(default_factory=dict)

    def predict(self, frame: pl.DataFrame) -> FloatArray:
        """Expected incidents per row (cell, origin, horizon)."""
        x = to_matrix(frame, self.features)
        return np.asarray(self.booster.predict(x), dtype=np.float64)

    def intervals(self, mu: FloatArray) -> tuple[FloatArray, FloatArray]:
        return count_interval(mu, self.alpha, self.level)

    def contributions(self, frame: pl.DataFrame) -> FloatArray:
        """TreeSHAP contributions to the log expected count, one column per input (the bias
        column LightGBM appends is dropped)."""
        x = to_matrix(frame, self.features)
        raw = np.asarray(self.booster.predict(x, pred_contrib=True), dtype=np.float64)
        return raw[:, : len(self.features)]

    def reasons(self, frame: pl.DataFrame, top: int = 3) -> list[str]:
        """Per row a JSON list of the ``top`` inputs with the largest absolute contribution:
        ``feature``, ``description``, ``value`` (the input), ``contribution`` (log scale)."""
        if frame.is_empty():
            return []
        contrib = self.contributions(frame)
        values = to_matrix(frame, self.features)
        k = min(top, len(self.features))
        order = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, :k]
        names = self.features
        out: list[str] = []
        for i in range(contrib.shape[0]):
            items = []
            for j in order[i]:
                v = values[i, j]
                items.append(
                    {
                        "feature": names[j],
                        "description": self.descriptions.get(names[j], names[j]),
                        "value": None if np.isnan(v) else round(float(v), 4),
                        "contribution": round(float(contrib[i, j]), 4),
                    }
                )
            out.append(json.dumps(items, ensure_ascii=False))
        return out

    def save(self, folder: Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(folder / BOOSTER_FILE))
        meta = {
            "features": self.features,
            "descriptions": self.descriptions,
            "objective": self.objective,
            "horizons": self.horizons,
            "alpha": self.alpha,
            "level": self.level,
            "metadata": self.metadata,
        }
        (folder / META_FILE).write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: Path) -> PlacesModel:
        folder = Path(folder)
        meta_path, booster_path = folder / META_FILE, folder / BOOSTER_FILE
        if not meta_path.is_file() or not booster_path.is_file():
            raise InputError(f"{folder}: not a places model (needs {BOOSTER_FILE} and {META_FILE})")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        return cls(
            booster=lgb.Booster(model_file=str(booster_path)),
            features=list(meta["features"]),
            descriptions=dict(meta["descriptions"]),
            objective=str(meta["objective"]),
            horizons=int(meta["horizons"]),
            alpha=float(meta["alpha"]),
            level=float(meta["level"]),
            metadata=dict(meta.get("metadata", {})),
        )


def lgbm_count_params(params: dict[str, Any], *, seed: int, num_threads: int) -> dict[str, Any]:
    """LightGBM parameters for a count model: the sampled ones plus determinism and quiet."""
    out = dict(params)
    out.pop("num_boost_round", None)
    out.update(
        {
            "verbosity": -1,
            "seed": seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": num_threads,
            "metric": "poisson",
        }
    )
    return out


def fit_count_booster(
    x: FloatArray,
    y: FloatArray,
    features: list[str],
    params: dict[str, Any],
    *,
    seed: int,
    num_threads: int,
) -> lgb.Booster:
    """The final booster with ``params`` (``num_boost_round`` from tuning)."""
    rounds = int(params.get("num_boost_round", 100))
    data = lgb.Dataset(x, label=y, feature_name=features, params={"feature_pre_filter": False})
    return lgb.train(lgbm_count_params(params, seed=seed, num_threads=num_threads), data, rounds)
