"""Optuna over LightGBM count models on rolling-origin folds, scored by Poisson deviance.

The person path's `training.tuning.tune` scores probabilities (log loss, AUC); a count model
needs a count loss, and the objective itself (Poisson or Tweedie) is searched here, so this is
a sibling of it sharing its parameter ranges (`training.tuning.ParamRange`), its study (TPE
with a fixed seed, median pruning after each fold: `new_study`) and its trial over the folds
(`score_folds`). Every trial, whatever its objective,
is scored by the mean Poisson deviance over the folds' validation rows: the same yardstick for
both objectives, and the loss the out-of-time evaluation reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import optuna
from numpy.typing import NDArray

from training.places.config import PlacesSearch
from training.places.metrics import poisson_deviance
from training.places.model import lgbm_count_params
from training.tuning import (
    PreparedFold,
    best_rounds,
    new_study,
    score_folds,
    trial_callback,
    trial_states,
)

FloatArray = NDArray[np.float64]
CountFold = tuple[FloatArray, FloatArray, FloatArray, FloatArray]
"""``(x_train, y_train, x_valid, y_valid)`` of one rolling-origin fold."""


@dataclass(frozen=True)
class CountTuneResult:
    best_params: dict[str, Any]
    best_value: float
    objective: str
    by_objective: dict[str, float]
    summary: dict[str, Any] = field(default_factory=dict)


def _subsample(
    x: FloatArray, y: FloatArray, rows: int | None, seed: int
) -> tuple[FloatArray, FloatArray]:
    if rows is None or x.shape[0] <= rows:
        return x, y
    idx = np.sort(np.random.default_rng(seed).choice(x.shape[0], rows, replace=False))
    return x[idx], y[idx]


def _prepare(
    folds: Sequence[CountFold], features: list[str], rows: int | None, seed: int
) -> list[PreparedFold]:
    """Bin each fold once; every trial reuses the LightGBM datasets."""
    out = []
    for xt, yt, xv, yv in folds:
        xs, ys = _subsample(xt, yt, rows, seed)
        train = lgb.Dataset(
            xs,
            label=ys,
            feature_name=features,
            free_raw_data=False,
            params={"feature_pre_filter": False},
        )
        valid = lgb.Dataset(
            xv, label=yv, reference=train, free_raw_data=False, params={"feature_pre_filter": False}
        )
        out.append(PreparedFold(train, valid, xv, yv))
    return out


def tune_counts(
    folds: Sequence[CountFold],
    features: list[str],
    space: PlacesSearch,
    n_trials: int,
    *,
    seed: int,
    num_threads: int = 0,
    on_trial: Callable[[int, int, float | None], None] | None = None,
) -> CountTuneResult:
    """Search ``space`` for ``n_trials``; ``best_params`` carry ``objective`` and
    ``num_boost_round`` (the mean best iteration over the best trial's folds)."""
    if not folds:
        raise ValueError("tuning needs at least one rolling-origin fold")
    prepared = _prepare(folds, features, space.max_train_rows, seed)
    study = new_study(
        direction="minimize",
        seed=seed,
        startup_trials=space.startup_trials,
        pruning_warmup_trials=space.pruning_warmup_trials,
    )

    def objective(trial: optuna.Trial) -> float:
        sampled = space.sample(trial)
        params = lgbm_count_params(sampled, seed=seed, num_threads=num_threads)
        value = score_folds(
            trial,
            prepared,
            params,
            num_boost_round=space.num_boost_round,
            early_stopping_rounds=space.early_stopping_rounds,
            loss=poisson_deviance,
        )
        trial.set_user_attr("objective", sampled["objective"])  # a trial that was not pruned
        return value

    started = time.perf_counter()
    study.optimize(
        objective,
        n_trials=n_trials,
        callbacks=[trial_callback(on_trial, n_trials)],
        gc_after_trial=False,
    )
    best = study.best_trial
    chosen = str(best.user_attrs.get("objective", space.objectives[0]))
    best_params: dict[str, Any] = {**space.fixed, **best.params, "objective": chosen}
    best_params["num_boost_round"] = best_rounds(best, space.num_boost_round)
    by_objective: dict[str, float] = {}
    for t in study.trials:
        if t.state != optuna.trial.TrialState.COMPLETE or t.value is None:
            continue
        name = str(t.user_attrs.get("objective"))
        by_objective[name] = min(by_objective.get(name, np.inf), float(t.value))
    summary = {
        "n_trials": len(study.trials),
        "states": trial_states(study),
        "best_trial": best.number,
        "best_value": best.value,
        "best_params": best_params,
        "best_fold_values": best.user_attrs.get("fold_values"),
        "best_by_objective": by_objective,
        "seconds": time.perf_counter() - started,
        "trials": [
            {"number": t.number, "state": t.state.name, "value": t.value, "params": t.params}
            for t in study.trials
        ],
    }
    return CountTuneResult(
        best_params=best_params,
        best_value=float(best.value if best.value is not None else np.nan),
        objective=chosen,
        by_objective=by_objective,
        summary=summary,
    )
