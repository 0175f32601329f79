"""The parts of a hyper-parameter search that a trial needs wherever it runs: the search space
(the ``search`` section of ``configs/training.yaml``), the folds binned once, the study (TPE,
median pruning) and the objective. `training.tuning` drives a study in this process and
`training.dask_tune` on Dask workers; both import from here, neither from the other's
internals (no import cycle)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Self

import lightgbm as lgb
import numpy as np
import optuna
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sklearn.metrics import log_loss, roc_auc_score

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
