"""Online store round trips on SQLite and on the real PostgreSQL (own schema, dropped after)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from features.online import SqlOnlineStore, open_online_store
from riskcast.errors import InputError, StoreError
from riskcast.settings import Settings
from tests.conftest import POSTGRES

pytestmark = pytest.mark.integration


def _vectors(n: int, seed: int = 0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "person_id": [f"P{i:07d}" for i in range(n)],
            "cases_total": pl.Series([(i * 7 + seed) % 5 for i in range(n)], dtype=pl.Int32),
            "share": [None if i % 3 == 0 else i / (n + 1) + seed for i in range(n)],
            "label": ['a, "b"' if i % 2 else None for i in range(n)],
            "flag": [None if i % 5 == 0 else i % 2 == 0 for i in range(n)],
            "since": [date(2020, 1, 1 + i % 28) for i in range(n)],
            "big": [i * 10**10 for i in range(n)],
        },
        schema={
            "person_id": pl.String(),
            "cases_total": pl.Int32(),
            "share": pl.Float64(),
            "label": pl.String(),
            "flag": pl.Boolean(),
            "since": pl.Date(),
            "big": pl.Int64(),
        },
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def online(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlOnlineStore]:
    if request.param == "sqlite":
        store = SqlOnlineStore(f"sqlite:///{tmp_path / 'online.sqlite'}")
        yield store
        store.dispose()
        return
    schema: str = request.getfixturevalue("pg_schema")  # dropped after the store is closed
    store = SqlOnlineStore(POSTGRES, schema=schema)
    try:
        yield store
    finally:
        store.dispose()


def test_round_trip(online: SqlOnlineStore) -> None:
    frame = _vectors(1000)
    done = online.materialize(frame, date(2025, 6, 30), "abc123")
    assert done.rows == 1000
    wanted = ["P0000999", "nobody", "P0000000", "P0000003", "P0000999"]
    got = online.get_vectors(wanted)
    assert got["person_id"].to_list() == ["P0000999", "P0000000", "P0000003"]
    assert set(got["as_of"]) == {date(2025, 6, 30)}
    assert set(got["spec_hash"]) == {"abc123"}
    expected = pl.DataFrame({"person_id": got["person_id"]}).join(
        frame, on="person_id", how="left", maintain_order="left"
    )
    assert_frame_equal(got.select(expected.columns), expected)


def test_materialize_replaces_the_previous_vectors(online: SqlOnlineStore) -> None:
    online.materialize(_vectors(50), date(2025, 5, 31), "old")
    online.materialize(
        _vectors(20, seed=1).with_columns(pl.lit(1.5).alias("extra")), date(2025, 6, 30), "new"
    )
    current = online.current()
    assert current is not None
    assert (current.as_of, current.spec_hash, current.rows) == (date(2025, 6, 30), "new", 20)
    got = online.get_vectors([f"P{i:07d}" for i in range(50)])
    assert got.height == 20  # P0000020.. belonged only to the old materialisation
    assert set(got["spec_hash"]) == {"new"}
    assert got["extra"].to_list() == [1.5] * 20


def test_failed_materialization_keeps_the_previous_one(online: SqlOnlineStore) -> None:
    online.materialize(_vectors(10), date(2025, 5, 31), "old")
    duplicated = pl.concat([_vectors(3), _vectors(3)])
    with pytest.raises(InputError, match="not unique"):
        online.materialize(duplicated, date(2025, 6, 30), "bad")
    assert online.get_vectors(["P0000009"])["spec_hash"].to_list() == ["old"]


def test_many_ids_in_one_query(online: SqlOnlineStore) -> None:
    online.materialize(_vectors(40_000), date(2025, 6, 30), "abc")
    ids = [f"P{i:07d}" for i in range(0, 40_000, 1)]
    statements: list[str] = []
    sa.event.listen(online.engine, "before_cursor_execute", _record(statements))
    got = online.get_vectors(ids)
    assert got.height == 40_000
    assert sum("feature_vectors" in s for s in statements) == 1


def test_narrow_reads_of_everyone_come_back_whole_in_batches(
    online: SqlOnlineStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`get_columns` reads the key, the meta and the named columns the store holds (others
    ignored), of everyone or of the ids asked in their order; several fetches lose no row."""
    from features.online import store as online_module

    monkeypatch.setattr(online_module, "FETCH_ROWS", 7_000)
    frame = _vectors(40_000)
    online.materialize(frame, date(2025, 6, 30), "abc")
    everyone = online.get_columns(["flag", "since", "not_stored"])
    assert everyone.columns == ["person_id", "as_of", "spec_hash", "written_at", "flag", "since"]
    assert_frame_equal(
        everyone.select("person_id", "flag", "since"),
        frame.select(everyone.columns[0], "flag", "since"),
    )
    asked = online.get_columns(["big"], ["P0000007", "nobody", "P0039999", "P0000007"])
    assert asked["person_id"].to_list() == ["P0000007", "P0039999"]
    assert asked["big"].to_list() == [7 * 10**10, 39_999 * 10**10]
    whole = online.get_vectors([f"P{i:07d}" for i in range(0, 40_000, 3)])
    assert whole.height == 13_334 and whole["person_id"].is_sorted()
    assert online.get_columns(["flag"], []).height == 0


def test_parts_load_like_one_frame_and_a_bad_part_publishes_nothing(
    online: SqlOnlineStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`materialize_parts`: parts with disjoint keys store what the whole frame stores, in
    slices; a key repeated across parts or a part with other columns leaves the previous
    materialisation serving."""
    from features.online import store as online_module

    monkeypatch.setattr(online_module, "LOAD_ROWS", 333)
    frame = _vectors(2_000)
    done = online.materialize_parts(
        (frame.slice(start, 700) for start in range(0, 2_000, 700)), date(2025, 6, 30), "parts"
    )
    assert done.rows == 2_000
    ids = frame["person_id"].to_list()
    got = online.get_vectors(ids)
    assert_frame_equal(got.select(frame.columns), frame)
    repeated = [frame.slice(0, 10), frame.slice(5, 10)]
    with pytest.raises(StoreError):
        online.materialize_parts(iter(repeated), date(2025, 7, 31), "bad")
    other = [frame.slice(0, 10), frame.slice(10, 10).drop("big")]
    with pytest.raises(InputError, match="parts differ"):
        online.materialize_parts(iter(other), date(2025, 7, 31), "bad")
    with pytest.raises(InputError, match="no part"):
        online.materialize_parts(iter([]), date(2025, 7, 31), "bad")
    current = online.current()
    assert current is not None and current.spec_hash == "parts" and current.rows == 2_000
    assert online.get_vectors(ids).height == 2_000


def test_reserved_and_unstorable_columns_are_refused(online: SqlOnlineStore) -> None:
    with pytest.raises(InputError, match="reserved"):
        online.materialize(
            _vectors(3).with_columns(pl.lit("x").alias("spec_hash")), date(2025, 1, 1), "a"
        )
    with pytest.raises(InputError, match="not storable"):
        online.materialize(
            _vectors(3).with_columns(pl.lit([1]).alias("lst")), date(2025, 1, 1), "a"
        )
    assert online.current() is None


def test_empty_and_unmaterialized(online: SqlOnlineStore) -> None:
    assert online.current() is None
    assert online.get_vectors(["P1"]).height == 0
    online.materialize(_vectors(0), date(2025, 6, 30), "abc")
    assert online.get_vectors(["P1"]).height == 0


def test_default_store_is_sqlite_under_home(tmp_path: Path) -> None:
    store = open_online_store(Settings(home=tmp_path / "home", database_url=None))
    store.materialize(_vectors(5), date(2025, 6, 30), "abc")
    store.dispose()
    assert (tmp_path / "home" / "riskcast.sqlite").is_file()


def _record(statements: list[str]):
    def listener(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    return listener
