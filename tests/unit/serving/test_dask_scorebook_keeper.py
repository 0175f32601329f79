"""The service's score-book thread on a LocalCluster (2 process workers): with
``RISKCAST_DASK_SCHEDULER`` set it scores on the workers and serves the book the local build
gives; a cluster that fails the build publishes nothing (requests are scored directly, the
failure is shown) and the next check builds the book again once the cluster works."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl
import pytest

from riskcast import cluster
from riskcast.cluster import Session
from serving.bookkeeper import BookKeeper
from tests.dask_helpers import dask_session, doomed_session, killing
from tests.unit.serving.test_scorebook_dask import _assert_same, inputs
from training.model import RiskModel

__all__ = ["dask_session", "doomed_session", "inputs"]

Inputs = tuple[RiskModel, pl.DataFrame, pl.DataFrame]


@dataclass
class _Current:
    as_of: str
    written_at: str = "t"


@dataclass
class _Store:
    vectors: pl.DataFrame
    key: str = "2025-01-01"

    def current(self) -> _Current:
        return _Current(self.key)

    def get_vectors(self, ids: list[str]) -> pl.DataFrame:
        return self.vectors

    def get_columns(self, columns: list[str], ids: list[str] | None = None) -> pl.DataFrame:
        return self.vectors.select("person_id", *(c for c in columns if c in self.vectors.columns))


def _keeper(inputs: Inputs, store: _Store, **kwargs: Any) -> BookKeeper:
    model, _, directory = inputs
    return BookKeeper(model, "1", None, store, directory, check_seconds=0, **kwargs)


def _served(keeper: BookKeeper) -> Any:
    assert keeper.book() is None  # the first check starts the build
    keeper.wait(300)  # generous: a LocalCluster on a loaded 2-core machine is slow, not failing
    return keeper.book()


def _prefixes(dask_scheduler: Any) -> list[str]:
    return list(dask_scheduler.task_prefixes)


def test_with_the_scheduler_set_the_served_book_is_built_on_the_cluster_and_equals_the_local(
    inputs: Inputs, dask_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = _served(_keeper(inputs, _Store(inputs[1])))
    assert local is not None
    client = dask_session.client
    assert "riskcast-score" not in client.run_on_scheduler(_prefixes)  # type: ignore[no-untyped-call]
    address = client.scheduler_info()["address"]
    monkeypatch.setenv("RISKCAST_DASK_SCHEDULER", str(address))
    spread = _served(_keeper(inputs, _Store(inputs[1])))
    assert spread is not None, "the build on the cluster failed"
    ran = client.run_on_scheduler(_prefixes)  # type: ignore[no-untyped-call]
    assert "riskcast-score" in ran  # scored on the workers
    assert spread.materialization == local.materialization == "2025-01-01@t"
    _, vectors, _ = inputs
    assert len(local.pinned) > 0 and spread.size == local.size == vectors.height
    _assert_same(spread, local)


def test_a_failing_cluster_publishes_nothing_and_the_next_check_rebuilds(
    inputs: Inputs, doomed_session: Session
) -> None:
    store = _Store(inputs[1])
    keeper = _keeper(inputs, store, cluster_session=lambda: cluster.active(doomed_session))
    first = _served(keeper)
    assert first is not None
    store.key = "2025-02-01"  # a new materialisation, scored while workers die
    with killing(doomed_session, "riskcast-score", retries=0):
        assert keeper.book() is None  # never the previous materialisation's scores
        assert keeper.wait(120) is None
    assert keeper.status.startswith("failed") and "riskcast-score" in keeper.status
    rebuilt = _served(keeper)  # the cluster works again: the next check builds it
    assert rebuilt is not None and rebuilt.materialization == "2025-02-01@t"
    _assert_same(rebuilt, first)  # the same vectors and model: the same book
