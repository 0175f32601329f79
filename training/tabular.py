"""`train-table`'s core: the model family on a flat table, judged by nested cross-validation.

A flat table has no time axis, so the honest estimate is **nested** cross-validation: the
outer folds (stratified, seeded) only ever score; everything that learns from data happens
inside the outer training part of each fold:

1. Optuna (`training.tuning.tune`) over inner stratified folds of the outer training part;
2. out-of-fold raw predictions of the tuned model on the outer training part (inner folds);
3. the calibrator: isotonic and Platt are fitted on one half of those out-of-fold predictions
   and the one with the lower Brier on the other half wins (`choose_calibrator`); the winner
   is refitted on all of them;
4. the tuned LightGBM refitted on the whole outer training part, then calibrated;
5. the baselines (`LogisticBaseline`, `PointsScale`) fitted on the same outer training part.

Each outer test part is scored by every model (`binary_metrics`, plus accuracy at 0.5); the
table reports the mean and sd over the outer folds. The pooled out-of-fold predictions (each
row scored once, by the model that never saw it) feed the plots, the paired bootstrap against
the baselines and the calibration-within-group report for protected columns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import polars as pl
from numpy.typing import NDArray
from sklearn.model_selection import StratifiedKFold

from riskcast.errors import InputError
from training.baselines import LogisticBaseline, PointsScale
from training.calibration import Calibrator, choose_calibrator, fit_calibrator
from training.evaluation import binary_metrics, bootstrap_auc_difference, calibration_by_group
from training.model import fit_lgbm
from training.tabular_data import PreparedTable
from training.tuning import ParamRange, SearchSpace, tune

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.intp]
MODEL = "riskcast"
Progress = Callable[[str], None]

#: Search space for flat tables (thousands of rows): shallow trees, strong regularisation.
TABLE_SPACE = SearchSpace(
    metric="log_loss",
    num_boost_round=2000,
    early_stopping_rounds=50,
    startup_trials=6,
    pruning_warmup_trials=4,
    fixed={"bagging_freq": 1, "max_bin": 255},
    params={
        "learning_rate": ParamRange(type="float", low=0.01, high=0.1, log=True),
        "num_leaves": ParamRange(type="int", low=3, high=32, log=True),
        "min_data_in_leaf": ParamRange(type="int", low=10, high=300, log=True),
        "feature_fraction": ParamRange(type="float", low=0.3, high=1.0),
        "bagging_fraction": ParamRange(type="float", low=0.5, high=1.0),
        "lambda_l2": ParamRange(type="float", low=1e-3, high=50.0, log=True),
        "min_sum_hessian_in_leaf": ParamRange(type="float", low=1e-3, high=10.0, log=True),
    },
)


@dataclass(frozen=True)
class TableOptions:
    """How to train: fold counts, trials, seed, threads, search space."""

    folds: int = 5
    inner_folds: int = 3
    trials: int = 20
    seed: int = 0
    num_threads: int = 1
    space: SearchSpace = field(default_factory=lambda: TABLE_SPACE.model_copy(deep=True))
    bootstrap: int = 200


class Scorer(Protocol):
    def fit(self, X: pl.DataFrame, y: FloatArray) -> Any: ...  # noqa: N803
    def predict_proba(self, X: pl.DataFrame) -> FloatArray: ...  # noqa: N803


#: Extra baselines a caller may add (e.g. an experiment's published reference models):
#: name -> factory of a fresh, unfitted scorer. They see the same folds.
BaselineFactory = Callable[[PreparedTable], Scorer]


@dataclass
class FoldResult:
    index: int
    n_train: int
    n_test: int
    best_params: dict[str, Any]
    tune_value: float
    calibration: str
    metrics: dict[str, dict[str, float]]


@dataclass
class TableResult:
    """Per-fold results, pooled out-of-fold predictions and the reports derived from them."""

    folds: list[FoldResult]
    oof: dict[str, FloatArray]
    y: FloatArray
    groups: dict[str, NDArray[np.str_]]
    features: list[str]
    notes: list[str]
    descriptions: dict[str, Any] = field(default_factory=dict)
    tuning: list[dict[str, Any]] = field(default_factory=list)

    @property
    def model_names(self) -> list[str]:
        return list(self.oof)

    def summary(self) -> dict[str, dict[str, float]]:
        """Per model: mean and sd (``<metric>_sd``) of each metric over the outer folds."""
        out: dict[str, dict[str, float]] = {}
        for name in self.model_names:
            rows = [f.metrics[name] for f in self.folds]
            stats: dict[str, float] = {}
            for key in rows[0]:
                values = np.array([r[key] for r in rows], dtype=np.float64)
                stats[key] = float(np.mean(values))
                stats[f"{key}_sd"] = float(np.std(values, ddof=1)) if values.size > 1 else 0.0
            out[name] = stats
        return out

    def calibration_by_group(self, bins: int = 10) -> dict[str, pl.DataFrame]:
        """Calibration within each protected column's groups, on pooled out-of-fold scores."""
        return {
            col: calibration_by_group(self.y, self.oof[MODEL], g, bins)
            for col, g in self.groups.items()
        }

    def compare(self, n_boot: int = 200, seed: int = 0) -> dict[str, dict[str, float]]:
        """Paired bootstrap AUC(riskcast) - AUC(baseline) on the pooled out-of-fold scores."""
        out = {}
        for name in self.model_names:
            if name == MODEL:
                continue
            mean, sd = bootstrap_auc_difference(
                self.y, self.oof[MODEL], self.oof[name], n_boot, seed
            )
            out[name] = {"auc_difference": mean, "sd": sd}
        return out

    def metrics_json(self) -> dict[str, Any]:
        """The ``--metrics-json`` document: outer-fold means (and sds), baselines beside."""
        summary = self.summary()

        def block(name: str) -> dict[str, float | None]:
            s = summary[name]
            keys = ("auc", "auc_sd", "brier", "brier_sd", "accuracy", "log_loss", "ece", "pr_auc")
            return {k: s[k] if np.isfinite(s[k]) else None for k in keys}  # JSON has no NaN

        doc: dict[str, Any] = dict(block(MODEL))
        doc["baselines"] = {n: block(n) for n in self.model_names if n != MODEL}
        doc["folds"] = len(self.folds)
        doc["n"] = int(self.y.size)
        doc["calibration_by_group"] = {
            col: frame.to_dicts() for col, frame in self.calibration_by_group().items()
        }
        return doc


def outer_splits(y: FloatArray, folds: int, seed: int) -> list[tuple[IndexArray, IndexArray]]:
    """The outer (train, test) index pairs: stratified, shuffled with ``seed``."""
    _check_folds(y, folds, "--folds")
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [(tr, te) for tr, te in skf.split(np.zeros(y.size), y)]


def _check_folds(y: FloatArray, folds: int, what: str) -> None:
    if folds < 2:
        raise InputError(f"{what} must be at least 2")
    smallest = int(min(y.sum(), y.size - y.sum()))
    if smallest < folds:
        raise InputError(
            f"{what} {folds} needs at least {folds} rows of each class; the rarer class has "
            f"{smallest}"
        )


def default_baselines() -> dict[str, BaselineFactory]:
    """The two baselines every run reports."""
    return {
        "logistic": lambda t: LogisticBaseline(t.features, t.count_features),
        "points_scale": lambda t: PointsScale(t.features, dict(t.monotone)),
    }


def _accuracy(y: FloatArray, p: FloatArray) -> float:
    return float(np.mean((p >= 0.5) == (y == 1)))


def _metrics(y: FloatArray, p: FloatArray) -> dict[str, float]:
    m = binary_metrics(y, p)
    m["accuracy"] = _accuracy(y, p)
    return m


def _calibrate(p_oof: FloatArray, y: FloatArray, seed: int) -> Calibrator:
    """Choose isotonic vs Platt on two halves of the out-of-fold scores; refit the winner."""
    halves = StratifiedKFold(n_splits=2, shuffle=True, random_state=seed)
    a, b = next(halves.split(np.zeros(y.size), y))
    chosen = choose_calibrator(p_oof[a], y[a], p_oof[b], y[b])
    return fit_calibrator(p_oof, y, chosen.method)


def _predict(booster: Any, x: pl.DataFrame) -> FloatArray:
    return np.asarray(booster.predict(x.to_numpy().astype(np.float64)), dtype=np.float64)


def _fit_fold(
    table: PreparedTable,
    train: IndexArray,
    test: IndexArray,
    k: int,
    options: TableOptions,
    report: Progress,
) -> tuple[FloatArray, str, dict[str, Any], float, dict[str, Any]]:
    """Tune, fit and calibrate riskcast on ``train``; calibrated scores on ``test``."""
    x, y = table.frame, table.y
    xtr, ytr = x[train], y[train]
    _check_folds(ytr, options.inner_folds, "--inner-folds")
    seed = options.seed + 1000 * (k + 1)
    inner = list(
        StratifiedKFold(options.inner_folds, shuffle=True, random_state=seed).split(
            np.zeros(ytr.size), ytr
        )
    )
    folds = [(xtr[a], ytr[a], xtr[b], ytr[b]) for a, b in inner]

    def on_trial(done: int, total: int, best: float | None) -> None:
        shown = "-" if best is None else f"{best:.4f}"
        report(f"fold {k + 1}/{options.folds}: trial {done}/{total}, best {shown}")

    tuned = tune(
        folds,
        options.space,
        options.trials,
        monotone=table.monotone,
        seed=seed,
        num_threads=options.num_threads,
        on_trial=on_trial,
    )
    params = tuned.best_params
    p_oof = np.empty(ytr.size, dtype=np.float64)
    for (_a, b), (xa, ya, xb, _) in zip(inner, folds, strict=True):
        booster = fit_lgbm(
            xa, ya, params, table.monotone, seed=seed, num_threads=options.num_threads
        )
        p_oof[b] = _predict(booster, xb)
    calibrator = _calibrate(p_oof, ytr, seed)
    final = fit_lgbm(xtr, ytr, params, table.monotone, seed=seed, num_threads=options.num_threads)
    p_test = calibrator.predict(_predict(final, x[test]))
    return p_test, calibrator.method, params, tuned.best_value, tuned.summary


def train_table(
    table: PreparedTable,
    options: TableOptions | None = None,
    *,
    baselines: Mapping[str, BaselineFactory] | None = None,
    progress: Progress | None = None,
) -> TableResult:
    """Nested cross-validation of riskcast and the baselines on ``table`` (module doc)."""
    options = options or TableOptions()
    report: Progress = progress or (lambda _msg: None)
    factories = default_baselines()
    factories.update(baselines or {})
    y = table.y
    splits = outer_splits(y, options.folds, options.seed)
    oof = {name: np.full(y.size, np.nan) for name in (MODEL, *factories)}
    folds: list[FoldResult] = []
    tuning: list[dict[str, Any]] = []
    descriptions: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for k, (train, test) in enumerate(splits):
        report(f"fold {k + 1}/{options.folds}: tuning")
        p, method, params, value, summary = _fit_fold(table, train, test, k, options, report)
        oof[MODEL][test] = p
        metrics = {MODEL: _metrics(y[test], p)}
        for name, make in factories.items():
            if name in failed:
                continue
            try:
                scorer = make(table)
                scorer.fit(table.frame[train], y[train])
                q = np.asarray(scorer.predict_proba(table.frame[test]), dtype=np.float64)
            except InputError as exc:  # a baseline that cannot be fitted is left out, said
                failed[name] = f"baseline {name!r} left out (fold {k + 1}): {exc}"
                continue
            oof[name][test] = q
            metrics[name] = _metrics(y[test], q)
            describe = getattr(scorer, "describe", None)
            if k == 0 and callable(describe):
                descriptions[name] = describe()  # the first fold's fit, as an illustration
        folds.append(FoldResult(k, train.size, test.size, params, value, method, metrics))
        tuning.append({"fold": k, **{kk: v for kk, v in summary.items() if kk != "trials"}})
        others = ", ".join(f"{n} {m['auc']:.4f}" for n, m in metrics.items() if n != MODEL)
        report(
            f"fold {k + 1}/{options.folds}: AUC {metrics[MODEL]['auc']:.4f} ({others}), "
            f"calibration {method}"
        )
    for name in failed:
        oof.pop(name)
        for fold in folds:
            fold.metrics.pop(name, None)
    return TableResult(
        folds=folds,
        oof=oof,
        y=y,
        groups=table.groups,
        features=table.features,
        notes=[*table.notes, *failed.values()],
        descriptions=descriptions,
        tuning=tuning,
    )
