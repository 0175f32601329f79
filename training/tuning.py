"""Hyper-parameter search: Optuna TPE with pruning over out-of-time folds.

Public API (also used by ``train-table``):

- `SearchSpace` (pydantic, the ``search`` section of ``configs/training.yaml``): the metric
  (``log_loss`` minimised or ``auc`` maximised), boosting rounds and early stopping, fixed
  LightGBM parameters, and one `ParamRange` per tuned parameter.
- `tune(folds, space, n_trials, *, monotone, seed, storage=None, study_name=None,
  progress=False) -> TuneResult`. ``folds`` are ``(X_train, y_train, X_valid, y_valid)`` tuples,
  oldest first (rolling origin); the objective is the mean validation metric over the folds,
  reported after each fold so a bad trial is pruned (median rule) before it uses every fold.
  With ``storage`` (an Optuna RDB URL, e.g. ``sqlite:///.../optuna.db``) and ``study_name`` the
  study persists and a rerun resumes it (only the missing trials run). Inside a Dask session
  (`riskcast.cluster`, ``RISKCAST_DASK_SCHEDULER``) with a ``storage``, the trials run on the
  workers, one per worker at a time, with the same objective (`trial_objective`,
  `training.dask_tune`; a trial past ``RISKCAST_DASK_TRIAL_TIMEOUT_S`` is recorded FAIL and its
  worker restarted); otherwise in this process exactly as before.

`TuneResult.best_params` are ready for `training.model.fit_lgbm`: the fixed and tuned
parameters plus ``num_boost_round`` = the mean best iteration of the best trial's folds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from riskcast import cluster
from training.trials import (
    Fold,
    Metric,
    ParamRange,
    PreparedFold,
    SearchSpace,
    TunedParameters,
    new_study,
    prepare_folds,
    score,
    score_folds,
    trial_objective,
)

__all__ = [  # the search's parts live in `training.trials`; callers keep importing them here
    "Fold",
    "Metric",
    "ParamRange",
    "PreparedFold",
    "SearchSpace",
    "StudySettings",
    "TuneResult",
    "TunedParameters",
    "best_rounds",
    "new_study",
    "prepare_folds",
    "score",
    "score_folds",
    "study_storage",
    "study_summary",
    "trial_callback",
    "trial_objective",
    "trial_states",
    "tune",
]


class StudySettings(BaseSettings):
    """Where the Optuna study is kept (read from the environment when training starts)."""

    model_config = SettingsConfigDict(env_prefix="RISKCAST_", extra="ignore")

    optuna_storage: str | None = Field(
        default=None,
        description="RISKCAST_OPTUNA_STORAGE: an Optuna RDB URL every Dask worker reaches "
        "(PostgreSQL in production); None: a SQLite file under the home",
    )


def study_storage(home: Path) -> str:
    """The study's storage URL: ``RISKCAST_OPTUNA_STORAGE``, else ``<home>/optuna.db``."""
    url = StudySettings().optuna_storage
    return url or f"sqlite:///{(home / 'optuna.db').resolve()}"


@dataclass(frozen=True)
class TuneResult:
    best_params: dict[str, Any]
    best_value: float
    metric: Metric
    summary: dict[str, Any] = field(default_factory=dict)


def tune(
    folds: list[Fold],
    space: SearchSpace,
    n_trials: int,
    *,
    monotone: dict[str, int],
    seed: int,
    storage: str | None = None,
    study_name: str | None = None,
    progress: bool = False,
    num_threads: int = 0,
    on_trial: Callable[[int, int, float | None], None] | None = None,
) -> TuneResult:
    """Search ``space`` for ``n_trials`` (in total, counting trials of a resumed study).

    ``on_trial(done, total, best_value)`` is called after each trial (for progress displays).
    """
    session = cluster.current() if storage is not None else None
    study = new_study(
        direction=space.direction,
        seed=seed,
        startup_trials=space.startup_trials,
        pruning_warmup_trials=space.pruning_warmup_trials,
        storage=storage,
        study_name=study_name,
    )
    done = len([t for t in study.trials if t.state.is_finished()])
    remaining = max(0, n_trials - done)
    started = time.perf_counter()

    if session is None:
        features, prepared = prepare_folds(folds, space.max_train_rows, seed)
        study.optimize(
            trial_objective(space, monotone, features, prepared, seed=seed, threads=num_threads),
            n_trials=remaining,
            callbacks=[trial_callback(on_trial, n_trials)],
            show_progress_bar=progress,
            gc_after_trial=False,
        )
    else:  # the same objective, one trial per worker (training.dask_tune)
        from training.dask_tune import TrialTask, optimize_on_cluster

        assert storage is not None
        task = TrialTask(space, monotone, seed, num_threads, storage, study.study_name)
        callback = trial_callback(on_trial, n_trials)
        optimize_on_cluster(session, study, task, folds, remaining, callback)
    best = study.best_trial
    best_params = {**space.fixed, **best.params}
    best_params["num_boost_round"] = best_rounds(best, space.num_boost_round)
    return TuneResult(
        best_params=best_params,
        best_value=float(best.value if best.value is not None else np.nan),
        metric=space.metric,
        summary=study_summary(study, seconds=time.perf_counter() - started),
    )


def best_rounds(best: optuna.trial.FrozenTrial, num_boost_round: int) -> int:
    """The final model's number of rounds: the mean best iteration over the best trial's folds
    (``num_boost_round`` when it kept none)."""
    iters = best.user_attrs.get("best_iterations") or [num_boost_round]
    return max(1, round(float(np.mean(iters))))


def trial_callback(
    on_trial: Callable[[int, int, float | None], None] | None, total: int
) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
    """An Optuna callback calling ``on_trial(finished, total, best_value_or_None)``."""

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if on_trial is not None:
            finished = len([t for t in study.trials if t.state.is_finished()])
            on_trial(finished, total, _best_or_none(study))

    return callback


def _best_or_none(study: optuna.Study) -> float | None:
    try:
        return float(study.best_value)
    except ValueError:
        return None


def trial_states(study: optuna.Study) -> dict[str, int]:
    """How many trials ended in each state (``COMPLETE``, ``PRUNED``, ...)."""
    states: dict[str, int] = {}
    for t in study.trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    return states


_WHERE = ("dask_worker", "timed_out_s")
"""Trial attributes the Dask path records (where a trial ran, that it was taken for hung)."""


def study_summary(study: optuna.Study, *, seconds: float | None = None) -> dict[str, Any]:
    """A JSON-able summary: counts by state, best trial, and every trial's value and params
    (and, for a trial run on Dask, its worker and whether it timed out)."""
    best = study.best_trial
    return {
        "study_name": study.study_name,
        "direction": study.direction.name.lower(),
        "n_trials": len(study.trials),
        "states": trial_states(study),
        "best_trial": best.number,
        "best_value": best.value,
        "best_params": best.params,
        "best_fold_values": best.user_attrs.get("fold_values"),
        "best_iterations": best.user_attrs.get("best_iterations"),
        "seconds_this_session": seconds,
        "trials": [
            {
                "number": t.number,
                "state": t.state.name,
                "value": t.value,
                "params": t.params,
                "seconds": t.duration.total_seconds() if t.duration else None,
                **{k: t.user_attrs[k] for k in _WHERE if k in t.user_attrs},
            }
            for t in study.trials
        ],
    }
