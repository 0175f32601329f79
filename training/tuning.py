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
  `training.dask_tune`); otherwise in this process exactly as before.

`TuneResult.best_params` are ready for `training.model.fit_lgbm`: the fixed and tuned
parameters plus ``num_boost_round`` = the mean best iteration of the best trial's folds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Self

import lightgbm as lgb
import numpy as np
import optuna
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sklearn.metrics import log_loss, roc_auc_score

from riskcast import cluster
from training.model import DEFAULT_EARLY_STOPPING, lgbm_params, to_matrix

Metric = Literal["log_loss", "auc"]
Fold = tuple[pl.DataFrame, np.ndarray, pl.DataFrame, np.ndarray]
Fold2 = tuple[pl.DataFrame, np.ndarray]


class ParamRange(BaseModel):
    """One tuned parameter: a float or int range (optionally log-scaled) or a list of choices."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[str | int | float | bool] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.type == "categorical":
            if not self.choices or self.low is not None or self.high is not None:
                raise ValueError("categorical takes `choices` only")
        else:
            if self.low is None or self.high is None or self.choices is not None:
                raise ValueError(f"{self.type} takes `low` and `high`")
            if self.low > self.high or (self.log and self.low <= 0):
                raise ValueError("need low <= high (and low > 0 with log)")
        return self

    def distribution(self) -> optuna.distributions.BaseDistribution:
        """The distribution `suggest` samples from (to sample a trial before it runs, with
        ``study.ask``, as the Dask path does)."""
        if self.type == "categorical":
            assert self.choices is not None
            return optuna.distributions.CategoricalDistribution(self.choices)
        assert self.low is not None and self.high is not None
        if self.type == "int":
            return optuna.distributions.IntDistribution(int(self.low), int(self.high), log=self.log)
        return optuna.distributions.FloatDistribution(self.low, self.high, log=self.log)

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        if self.type == "categorical":
            assert self.choices is not None
            return trial.suggest_categorical(name, self.choices)
        assert self.low is not None and self.high is not None
        if self.type == "int":
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(name, self.low, self.high, log=self.log)


class TunedParameters(BaseModel):
    """LightGBM parameters: some fixed, some searched, never both (the person and the place
    search spaces share this part)."""

    model_config = ConfigDict(extra="forbid")

    fixed: dict[str, str | int | float | bool] = Field(default_factory=dict)
    params: dict[str, ParamRange] = Field(min_length=1)

    @model_validator(mode="after")
    def _disjoint(self) -> Self:
        both = sorted(set(self.fixed) & set(self.params))
        if both:
            raise ValueError(f"parameters both fixed and tuned: {', '.join(both)}")
        return self


class SearchSpace(TunedParameters):
    """What Optuna searches, and how a trial is scored."""

    metric: Metric = "log_loss"
    num_boost_round: int = Field(default=1000, gt=0, description="upper bound; early stopping")
    early_stopping_rounds: int = Field(default=DEFAULT_EARLY_STOPPING, gt=0)
    startup_trials: int = Field(default=8, ge=1, description="random trials before TPE")
    pruning_warmup_trials: int = Field(default=4, ge=0, description="trials before pruning")
    max_train_rows: int | None = Field(
        default=None, gt=0, description="subsample each fold's training rows (seeded) to this"
    )

    @property
    def direction(self) -> Literal["minimize", "maximize"]:
        return "minimize" if self.metric == "log_loss" else "maximize"

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        """Every tuned parameter's distribution, in the order `sample` suggests them."""
        return {name: rng.distribution() for name, rng in self.params.items()}

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.fixed)
        out.update({name: rng.suggest(trial, name) for name, rng in self.params.items()})
        return out


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


def score(metric: Metric, y: np.ndarray, p: np.ndarray) -> float:
    """The objective's metric (log loss on clipped probabilities, or ROC AUC)."""
    if metric == "auc":
        return float(roc_auc_score(y, p))
    return float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1]))


@dataclass
class PreparedFold:
    """One fold binned once for every trial (`score_folds`)."""

    train: lgb.Dataset
    valid: lgb.Dataset
    x_valid: np.ndarray
    y_valid: np.ndarray


def _subsample(x: pl.DataFrame, y: np.ndarray, rows: int | None, seed: int) -> Fold2:
    if rows is None or x.height <= rows:
        return x, y
    idx = np.sort(np.random.default_rng(seed).choice(x.height, rows, replace=False))
    return x[idx], np.asarray(y)[idx]


def prepare_folds(
    folds: Sequence[Fold], max_rows: int | None = None, seed: int = 0
) -> tuple[list[str], list[PreparedFold]]:
    """Bin each fold once (LightGBM datasets reused by every trial); the training rows of a
    fold are subsampled to ``max_rows`` (validation rows never are)."""
    if not folds:
        raise ValueError("tune needs at least one fold")
    features = list(folds[0][0].columns)
    prepared = []
    for x_full, y_full, x_valid, y_valid in folds:
        x_train, y_train = _subsample(x_full, y_full, max_rows, seed)
        if list(x_train.columns) != features or list(x_valid.columns) != features:
            raise ValueError("every fold must have the same feature columns in the same order")
        train = lgb.Dataset(
            to_matrix(x_train, features),
            label=np.asarray(y_train, dtype=np.float64),
            feature_name=features,
            free_raw_data=False,
            params={"feature_pre_filter": False},
        )
        xv = to_matrix(x_valid, features)
        yv = np.asarray(y_valid, dtype=np.float64)
        valid = lgb.Dataset(xv, label=yv, reference=train, free_raw_data=False)
        prepared.append(PreparedFold(train, valid, xv, yv))
    return features, prepared


def tune(
    folds: list[tuple[pl.DataFrame, np.ndarray, pl.DataFrame, np.ndarray]],
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


def trial_objective(
    space: SearchSpace,
    monotone: dict[str, int],
    features: list[str],
    prepared: Sequence[PreparedFold],
    *,
    seed: int,
    threads: int,
) -> Callable[[optuna.Trial], float]:
    """The objective of one trial, the same function here and on a Dask worker
    (`training.dask_tune`): sample the space, score the folds."""
    lgb_metric = "binary_logloss" if space.metric == "log_loss" else "auc"

    def objective(trial: optuna.Trial) -> float:
        sampled = space.sample(trial)
        params = lgbm_params(sampled, monotone, features, seed=seed, num_threads=threads)
        params["metric"] = lgb_metric
        return score_folds(
            trial,
            prepared,
            params,
            num_boost_round=space.num_boost_round,
            early_stopping_rounds=space.early_stopping_rounds,
            loss=lambda y, p: score(space.metric, y, p),
        )

    return objective


def new_study(
    *,
    direction: Literal["minimize", "maximize"],
    seed: int,
    startup_trials: int,
    pruning_warmup_trials: int,
    storage: str | optuna.storages.BaseStorage | None = None,
    study_name: str | None = None,
) -> optuna.Study:
    """The study both paths tune with: TPE with a fixed seed (the same trials on a rerun) and
    median pruning after each fold once ``pruning_warmup_trials`` have finished; a study kept
    in ``storage`` is resumed."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        storage=storage,
        study_name=study_name,
        load_if_exists=storage is not None,
        direction=direction,
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials),
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=pruning_warmup_trials, n_warmup_steps=0
        ),
    )


def score_folds(
    trial: optuna.Trial,
    folds: Sequence[PreparedFold],
    params: dict[str, Any],
    *,
    num_boost_round: int,
    early_stopping_rounds: int,
    loss: Callable[[np.ndarray, np.ndarray], float],
) -> float:
    """One trial: train on each fold in turn (early stopping on its validation rows), report
    the running mean of ``loss(y_valid, predicted)`` after each fold so the pruner can stop a
    poor trial early; the mean over the folds. The trial keeps ``fold_values`` and
    ``best_iterations`` (the final model's number of rounds is their mean)."""
    values: list[float] = []
    iterations: list[int] = []
    for step, fold in enumerate(folds):
        booster = lgb.train(
            params,
            fold.train,
            num_boost_round=num_boost_round,
            valid_sets=[fold.valid],
            callbacks=[lgb.early_stopping(early_stopping_rounds, verbose=False)],
        )
        p = np.asarray(booster.predict(fold.x_valid, num_iteration=booster.best_iteration))
        values.append(loss(fold.y_valid, p))
        iterations.append(int(booster.best_iteration or num_boost_round))
        trial.report(float(np.mean(values)), step)
        if step < len(folds) - 1 and trial.should_prune():
            raise optuna.TrialPruned()
    trial.set_user_attr("fold_values", values)
    trial.set_user_attr("best_iterations", iterations)
    return float(np.mean(values))


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


def study_summary(study: optuna.Study, *, seconds: float | None = None) -> dict[str, Any]:
    """A JSON-able summary: counts by state, best trial, and every trial's value and params."""
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
            }
            for t in study.trials
        ],
    }
