"""The score book built partition by partition on a LocalCluster (2 process workers) equals the
book built in one process; a worker lost mid-scoring is retried with the same result, and a
step that cannot finish fails whole (nothing half-built is returned)."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import polars as pl
import pytest

from riskcast import cluster
from riskcast.cluster import ClusterError, Session
from serving.scorebook import ScoreBook, build_scorebook
from tests.dask_helpers import dask_session, doomed_session, killing
from training.model import FeatureInfo, RiskModel, Tier

__all__ = ["dask_session", "doomed_session"]

N = 3000


@pytest.fixture(scope="module")
def inputs() -> tuple[RiskModel, pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(N, 5))
    x[rng.random(size=x.shape) < 0.05] = np.nan  # missing values travel too
    y = (np.nan_to_num(x[:, 0]) + rng.normal(size=N) > 0.5).astype(float)
    names = [f"f{i}" for i in range(5)]
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 15, "seed": 1},
        lgb.Dataset(x, y, feature_name=names),
        num_boost_round=40,
    )
    model = RiskModel(
        booster,
        None,
        [Tier("low", 0.0), Tier("medium", 0.3), Tier("high", 0.6)],
        [FeatureInfo(f, "criminal_history", "static", 0, f) for f in names],
    )
    ids = [f"P{i:06d}" for i in rng.permutation(N)]
    vectors = pl.DataFrame({"person_id": ids, **{f: x[:, i] for i, f in enumerate(names)}})
    regions = rng.choice(["ALA", "BET", "GAM"], size=N)
    districts = [f"{r}-{d}" for r, d in zip(regions, rng.integers(0, 4, size=N), strict=True)]
    directory = pl.DataFrame({"person_id": ids, "region": regions, "district": districts})
    return model, vectors, directory


def _book(inputs: tuple[RiskModel, pl.DataFrame, pl.DataFrame]) -> ScoreBook:
    model, vectors, directory = inputs
    return build_scorebook(
        model, vectors, directory, model_version="1", materialization="m", explain_first=40
    )


def _assert_same(a: ScoreBook, b: ScoreBook) -> None:
    assert a.person_ids.tolist() == b.person_ids.tolist()
    np.testing.assert_array_equal(a.raw, b.raw)  # bit for bit: the same trees, row by row
    np.testing.assert_array_equal(a.probability, b.probability)
    assert a.tier.tolist() == b.tier.tolist()
    np.testing.assert_array_equal(a.rank, b.rank)
    assert a.units.keys() == b.units.keys()
    for unit, rows in a.units.items():
        np.testing.assert_array_equal(rows, b.units[unit])
    assert a.pinned.keys() == b.pinned.keys() and len(a.pinned) > 40
    for row, contrib in a.pinned.items():
        np.testing.assert_allclose(contrib, b.pinned[row], rtol=0, atol=1e-12)


def test_book_on_the_cluster_equals_the_single_process_book(
    inputs: tuple[RiskModel, pl.DataFrame, pl.DataFrame], dask_session: Session
) -> None:
    alone = _book(inputs)
    with cluster.active(dask_session):
        spread = _book(inputs)
    _assert_same(spread, alone)


def test_worker_killed_mid_scoring_fails_the_step_whole(
    inputs: tuple[RiskModel, pl.DataFrame, pl.DataFrame], doomed_session: Session
) -> None:
    with (
        killing(doomed_session, "riskcast-score", retries=0),
        cluster.active(doomed_session),
        pytest.raises(ClusterError, match="riskcast-score"),
    ):
        _book(inputs)  # no book at all: the caller keeps serving the one it has


def test_worker_killed_once_mid_scoring_is_retried_with_the_same_book(
    inputs: tuple[RiskModel, pl.DataFrame, pl.DataFrame], doomed_session: Session, tmp_path: Path
) -> None:
    alone = _book(inputs)
    marker = tmp_path / "killed"
    with killing(doomed_session, "riskcast-score", once=marker), cluster.active(doomed_session):
        retried = _book(inputs)
    assert marker.exists()  # a worker did die mid-scoring
    _assert_same(retried, alone)
