"""Optuna trials as Dask tasks on a LocalCluster (2 process workers): the study is in the shared
storage with every trial run on a worker, one worker at a time each, the same trials as the
single machine when they run one after the other, and a worker lost during a trial only costs
that attempt (the trial is run again, the study completes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import polars as pl
import pytest

from riskcast import cluster
from riskcast.cluster import Session
from tests.dask_helpers import dask_session, doomed_session, killing
from training.dask_tune import TRIAL_KEY
from training.tuning import Fold, SearchSpace, tune

__all__ = ["dask_session", "doomed_session"]

SPACE = SearchSpace.model_validate(
    {
        "metric": "log_loss",
        "num_boost_round": 60,
        "early_stopping_rounds": 10,
        "startup_trials": 2,
        "pruning_warmup_trials": 2,
        "fixed": {"max_bin": 31},
        "params": {
            "learning_rate": {"type": "float", "low": 0.05, "high": 0.3, "log": True},
            "num_leaves": {"type": "int", "low": 4, "high": 16},
        },
    }
)


def _folds(seed: int = 1) -> list[Fold]:
    rng = np.random.default_rng(seed)

    def part(n: int) -> tuple[pl.DataFrame, np.ndarray]:
        x = rng.normal(size=(n, 3))
        y = (rng.random(n) < 1 / (1 + np.exp(-(1.5 * x[:, 0] - x[:, 1])))).astype(float)
        return pl.DataFrame({f"f{i}": x[:, i] for i in range(3)}), y

    folds = []
    for _ in range(2):
        xt, yt = part(1500)
        xv, yv = part(800)
        folds.append((xt, yt, xv, yv))
    return folds


def _storage(tmp_path: Path) -> str:
    return f"sqlite:///{(tmp_path / 'optuna.db').resolve()}"


def _workers(session: Session) -> set[str]:
    return set(session.client.scheduler_info(n_workers=-1)["workers"])


def test_trials_run_on_the_workers_with_the_study_in_the_shared_storage(
    dask_session: Session, tmp_path: Path
) -> None:
    storage, seen = _storage(tmp_path), []
    with cluster.active(dask_session):
        result = tune(
            _folds(),
            SPACE,
            4,
            monotone={"f0": 1},
            seed=3,
            storage=storage,
            study_name="s",
            num_threads=1,
            on_trial=lambda done, total, best: seen.append((done, total)),
        )
    study = optuna.load_study(study_name="s", storage=storage)
    assert len(study.trials) == 4
    assert all(t.state.is_finished() for t in study.trials)
    ran_on = {t.user_attrs["dask_worker"] for t in study.trials}
    assert ran_on <= _workers(dask_session) and len(ran_on) == 2  # both workers took trials
    done = [d for d, _ in seen]  # one call per trial; two trials ending together may both
    assert len(done) == 4 and done == sorted(done) and done[-1] == 4  # read the same count
    assert {t for _, t in seen} == {4}
    best = study.best_trial
    assert result.best_value == best.value and result.best_params["num_boost_round"] >= 1
    assert result.best_params["learning_rate"] == best.params["learning_rate"]


def test_one_trial_at_a_time_gives_the_single_machine_trials(
    dask_session: Session, tmp_path: Path
) -> None:
    """With the trials one after the other (one more per call, the study resumed each time,
    on both paths), the client's sampler sees what the single machine's sees: the same
    parameters, the same values (the objective is the same function)."""
    alone_storage, spread_storage = _storage(tmp_path / "a"), _storage(tmp_path)
    (tmp_path / "a").mkdir()
    for n in (1, 2, 3):
        alone = tune(_folds(), SPACE, n, monotone={}, seed=5, storage=alone_storage, study_name="s")
        with cluster.active(dask_session):
            spread = tune(
                _folds(), SPACE, n, monotone={}, seed=5, storage=spread_storage, study_name="s"
            )
    trials, expected = spread.summary["trials"], alone.summary["trials"]
    assert len(trials) == 3
    assert [t["params"] for t in trials] == [t["params"] for t in expected]
    assert [t["value"] for t in trials] == pytest.approx([t["value"] for t in expected], rel=1e-9)


def test_a_worker_lost_during_a_trial_reruns_it_and_the_study_completes(
    doomed_session: Session, tmp_path: Path
) -> None:
    storage, marker = _storage(tmp_path), tmp_path / "killed"
    with (
        killing(doomed_session, TRIAL_KEY, once=marker, retries=0),
        cluster.active(doomed_session),
    ):
        tune(_folds(), SPACE, 3, monotone={}, seed=3, storage=storage, study_name="s")
    assert marker.exists()  # a worker did die in a trial (Dask itself did not retry it)
    study = optuna.load_study(study_name="s", storage=storage)
    assert len(study.trials) == 3  # the lost trial was run again, not replaced by another
    assert all(
        t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        for t in study.trials
    )
