"""The builder's snapshot reader travels to Dask workers: it pickles with the standard library
(a module-level function with plain data bound, no closure), and the copy reads what the
original reads, tombstones included (an erased person stays absent on the worker)."""

from __future__ import annotations

import pickle
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from polars.testing import assert_frame_equal

from features.frames.builder import snapshot_reader
from features.ingest.pipeline import ingest_delivery
from features.store.offline import OfflineStore
from features.store.tombstones import add_tombstone
from riskcast.errors import NotFoundError
from tests.factories import valid_tables, write_delivery


@pytest.fixture
def store(tmp_path: Path) -> OfflineStore:
    write_delivery(tmp_path / "d1", valid_tables(6, seed=3), extract_id="d1")
    ingest_delivery(tmp_path / "d1", tmp_path / "home")
    return OfflineStore(tmp_path / "home")


def test_the_reader_pickles_and_reads_the_same_rows_without_the_erased(
    store: OfflineStore,
) -> None:
    everyone = store.scan("persons").select("person_id").collect()["person_id"].to_list()
    victim = sorted(everyone)[2]
    with store.writer():
        assert add_tombstone(store.root, victim, datetime(2026, 1, 1, tzinfo=UTC))
    read = snapshot_reader(store, [date(2024, 12, 31)], False)

    copy = pickle.loads(pickle.dumps(read))  # the standard pickle: no closure can travel

    for table in ("persons", "criminal_cases"):
        here, there = read(table).collect(), copy(table).collect()
        assert_frame_equal(here, there)
        assert victim not in set(there["person_id"].to_list())
    assert set(copy("persons").collect()["person_id"].to_list()) == set(everyone) - {victim}


def test_a_table_never_delivered_is_still_not_found_after_the_trip(tmp_path: Path) -> None:
    tables = {k: v for k, v in valid_tables(6, seed=3).items() if k != "appeals"}
    write_delivery(tmp_path / "d1", tables, extract_id="d1")
    ingest_delivery(tmp_path / "d1", tmp_path / "home")
    read = snapshot_reader(OfflineStore(tmp_path / "home"), [date(2024, 12, 31)], False)
    copy = pickle.loads(pickle.dumps(read))
    with pytest.raises(NotFoundError, match="appeals"):
        copy("appeals")
    assert copy("releases").collect().height == read("releases").collect().height > 0
