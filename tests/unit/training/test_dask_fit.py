"""``lightgbm.dask`` on a LocalCluster (2 process workers): a model within the bootstrap sd of
the single machine's AUC, fixed rounds, and a fit past its timeout fails with the workers
restarted."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from riskcast.cluster import ClusterError, Session
from tests.dask_helpers import dask_session, doomed_session
from training.dask_fit import fit_lgbm_dask
from training.model import fit_lgbm, to_matrix

__all__ = ["dask_session", "doomed_session"]

PARAMS = {"num_leaves": 15, "learning_rate": 0.1, "min_data_in_leaf": 20}
MONOTONE = {"f0": 1, "f1": -1}
ROUNDS = 40


def _data(n: int, seed: int) -> tuple[pl.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    logit = 1.2 * x[:, 0] - 0.8 * x[:, 1] + 0.5 * x[:, 2] * x[:, 3] - 1.0
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float64)
    return pl.DataFrame({f"f{i}": x[:, i] for i in range(4)}), y


def _bootstrap_sd(y: np.ndarray, p: np.ndarray, rounds: int = 200) -> float:
    rng = np.random.default_rng(0)
    aucs = []
    for _ in range(rounds):
        idx = rng.integers(0, y.size, size=y.size)
        if 0 < y[idx].sum() < y.size:
            aucs.append(roc_auc_score(y[idx], p[idx]))
    return float(np.std(aucs))


def test_dask_model_within_the_bootstrap_sd_of_the_single_machine(
    dask_session: Session,
) -> None:
    x, y = _data(6000, 1)
    test_x, test_y = _data(4000, 2)
    single = fit_lgbm(x, y, {**PARAMS, "num_boost_round": ROUNDS}, MONOTONE, seed=7)
    spread = fit_lgbm_dask(dask_session, x, y, PARAMS, MONOTONE, seed=7, rounds=ROUNDS)
    assert spread.current_iteration() == ROUNDS == single.current_iteration()
    matrix = to_matrix(test_x, list(test_x.columns))
    p_single, p_spread = single.predict(matrix), spread.predict(matrix)
    auc_single, auc_spread = roc_auc_score(test_y, p_single), roc_auc_score(test_y, p_spread)
    assert auc_single > 0.7
    assert abs(auc_spread - auc_single) < _bootstrap_sd(test_y, p_single)
    assert spread.feature_name() == ["f0", "f1", "f2", "f3"]


def test_a_fit_past_its_timeout_fails_and_restarts_the_workers(doomed_session: Session) -> None:
    x, y = _data(6000, 3)
    with pytest.raises(ClusterError, match="no result after"):
        fit_lgbm_dask(doomed_session, x, y, PARAMS, MONOTONE, seed=7, rounds=2000, timeout_s=0.05)
    x_small, y_small = _data(2000, 4)  # recovered: the next fit on the same cluster works
    booster = fit_lgbm_dask(doomed_session, x_small, y_small, PARAMS, MONOTONE, seed=7, rounds=5)
    assert booster.current_iteration() == 5
