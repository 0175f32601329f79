"""A Dask trial past its timeout (``RISKCAST_DASK_TRIAL_TIMEOUT_S``) is taken for hung: it is
recorded FAIL with ``timed_out_s``, its worker is restarted, and when no trial completed the
search fails with `ClusterError`; the same cluster then runs the next search to the end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import polars as pl
import pytest

from riskcast import cluster
from riskcast.cluster import ClusterError, Session
from tests.dask_helpers import doomed_session
from training.dask_fit import TRIAL_TIMEOUT_S, trial_timeout
from training.tuning import Fold, SearchSpace, tune

__all__ = ["doomed_session"]

SPACE = SearchSpace.model_validate(
    {
        "metric": "log_loss",
        "num_boost_round": 80,
        "early_stopping_rounds": 80,
        "startup_trials": 2,
        "pruning_warmup_trials": 2,
        "params": {"learning_rate": {"type": "float", "low": 0.01, "high": 0.05}},
    }
)


def _folds() -> list[Fold]:
    rng = np.random.default_rng(4)

    def part(n: int) -> tuple[pl.DataFrame, np.ndarray]:
        x = rng.normal(size=(n, 3))
        y = (rng.random(n) < 1 / (1 + np.exp(-x[:, 0]))).astype(float)
        return pl.DataFrame({f"f{i}": x[:, i] for i in range(3)}), y

    return [(*part(1500), *part(500)) for _ in range(2)]


def _workers(session: Session) -> set[str]:
    return set(session.client.scheduler_info(n_workers=-1)["workers"])


def test_the_timeout_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RISKCAST_DASK_TRIAL_TIMEOUT_S", raising=False)
    assert trial_timeout() == TRIAL_TIMEOUT_S
    monkeypatch.setenv("RISKCAST_DASK_TRIAL_TIMEOUT_S", "12.5")
    assert trial_timeout() == 12.5


def test_trials_past_the_timeout_fail_their_workers_restart_and_the_cluster_recovers(
    doomed_session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = f"sqlite:///{(tmp_path / 'optuna.db').resolve()}"
    before = _workers(doomed_session)
    monkeypatch.setenv("RISKCAST_DASK_TRIAL_TIMEOUT_S", "0.2")  # no trial ends that fast
    with cluster.active(doomed_session), pytest.raises(ClusterError, match="TRIAL_TIMEOUT_S"):
        tune(_folds(), SPACE, 2, monotone={}, seed=1, storage=storage, study_name="hung")
    study = optuna.load_study(study_name="hung", storage=storage)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL] * 2
    assert all(t.user_attrs["timed_out_s"] == 0.2 for t in study.trials)
    doomed_session.client.wait_for_workers(1, timeout=60)  # (a busy machine may lose one)
    assert not _workers(doomed_session) & before  # both hung workers were restarted

    monkeypatch.delenv("RISKCAST_DASK_TRIAL_TIMEOUT_S")
    with cluster.active(doomed_session):
        result = tune(_folds(), SPACE, 2, monotone={}, seed=1, storage=storage, study_name="ok")
    done = optuna.load_study(study_name="ok", storage=storage).trials
    assert [t.state for t in done] == [optuna.trial.TrialState.COMPLETE] * 2
    assert result.summary["trials"][0]["dask_worker"] in _workers(doomed_session)
    assert "timed_out_s" not in result.summary["trials"][0]
