"""Erasure tombstones (issue 13, section 3): the offline store never reads an erased person
again, the point-in-time builder drops them at every as-of, and a later delivery that still
holds the person does not bring them back (its rows are counted as ``erased``)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from features.frames.builder import collect_features
from features.frames.definitions import load_spec
from features.ingest.pipeline import ingest_delivery
from features.store.offline import OfflineStore
from features.store.tombstones import (
    ErasedPersons,
    KeyedHasher,
    add_tombstone,
    count_erased,
    drop_erased,
    erased_ids,
    erasures_path,
    pseudonym_key,
    read_erasures,
)
from serving.pseudonyms import pseudonym
from tests.factories import valid_tables, write_delivery

AS_OF = [date(2023, 12, 31), date(2024, 12, 31), date(2025, 12, 31)]


def _persons(store: OfflineStore, table: str = "persons") -> set[str]:
    return set(store.scan(table).select("person_id").collect()["person_id"].to_list())


@pytest.fixture
def home(tmp_path: Path) -> Path:
    tables = valid_tables(6, seed=3)
    write_delivery(tmp_path / "d1", tables, extract_id="d1")
    ingest_delivery(tmp_path / "d1", tmp_path / "home")
    return tmp_path / "home"


def test_drop_erased_is_a_pure_filter() -> None:
    frame = pl.LazyFrame({"person_id": ["a", "b", "c"], "x": [1, 2, 3]})
    assert drop_erased(frame, frozenset()) is frame
    kept = drop_erased(frame, frozenset({"b"})).collect()
    assert kept["person_id"].to_list() == ["a", "c"] and kept["x"].to_list() == [1, 3]


def test_a_tombstone_hides_the_person_from_every_read_and_every_as_of(home: Path) -> None:
    store = OfflineStore(home)
    everyone = _persons(store)
    victim = sorted(everyone)[1]
    spec = load_spec()
    before = collect_features(store, spec, AS_OF, "all")
    assert victim in set(before["person_id"].to_list())

    with store.writer():
        assert add_tombstone(store.root, victim, datetime(2026, 1, 1, tzinfo=UTC))
        assert not add_tombstone(store.root, victim)  # once is enough
    erased = erased_ids(store.root)
    assert set(erased) == {pseudonym(victim, pseudonym_key())} and erased.holds(victim)
    assert read_erasures(store.root).height == 1
    # the file keeps the keyed pseudonym (the access log's), never the id in clear
    assert victim.encode() not in erasures_path(store.root).read_bytes()
    assert read_erasures(store.root).columns == ["pseudonym", "erased_at"]

    assert _persons(store) == everyone - {victim}
    for table in ("criminal_cases", "addresses"):
        if store.has_table(table):
            assert victim not in _persons(store, table)
    after = collect_features(store, spec, AS_OF, "all")
    for as_of in AS_OF:  # gone at every as-of, the others unchanged
        rows = after.filter(pl.col("as_of") == as_of)
        assert victim not in set(rows["person_id"].to_list())
        was = before.filter((pl.col("as_of") == as_of) & (pl.col("person_id") != victim))
        assert rows.sort("person_id").equals(was.sort("person_id"))


def test_a_later_delivery_does_not_bring_the_person_back(home: Path, tmp_path: Path) -> None:
    store = OfflineStore(home)
    victim = sorted(_persons(store))[0]
    with store.writer():
        add_tombstone(store.root, victim)
    raw_before = pl.read_parquet(store.root / store.state().tables["persons"])
    assert victim in set(raw_before["person_id"].to_list())  # delivered files not rewritten

    # the same registers delivered again (a re-delivery of the old extract, under a new id)
    tables = valid_tables(6, seed=3)
    later = datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC)
    write_delivery(tmp_path / "d2", tables, extract_id="d2", extracted_at=later)
    report = ingest_delivery(tmp_path / "d2", home)
    assert report.status == "ingested"
    for name, counts in report.tables.items():
        # nothing lost: accepted / quarantined / duplicate / erased
        assert counts.rows_in == tables[name].height
        assert counts.rows_in == (
            counts.accepted + counts.quarantined + counts.duplicates_dropped + counts.erased
        )
        if "person_id" in tables[name].columns:
            mine = tables[name].filter(pl.col("person_id") == victim).height
            assert counts.erased == mine
    assert report.tables["persons"].erased == 1
    assert report.to_json_dict()["tables"]["persons"]["erased"] == 1
    assert report.totals.erased == sum(t.erased for t in report.tables.values()) > 0
    assert victim not in _persons(store)
    # not even in the new delivery's own files (stored or quarantined)
    state = store.state()
    for name, rel in state.tables.items():
        if name in {d for d in state.deliveries[-1].tables} and "person_id" in tables[name].columns:
            newest = pl.read_parquet(store.root / rel).filter(pl.col("_extract_id") == "d2")
            assert victim not in set(newest["person_id"].to_list())
    for rel in state.quarantine["d2"].values():
        quarantined = pl.read_parquet(store.root / rel)
        if "person_id" in quarantined.columns:
            assert victim not in set(quarantined["person_id"].to_list())
    features = collect_features(store, load_spec(), [date(2026, 1, 31)], "all")
    assert victim not in set(features["person_id"].to_list())
    # and re-ingesting the old delivery itself is a no-op
    again = ingest_delivery(tmp_path / "d1", home)
    assert again.status == "already_ingested" and victim not in _persons(store)


def test_the_report_shows_erased_rows_only_when_there_are_some() -> None:
    from rich.console import Console

    from features.ingest.report import IngestReport, TableReport, render

    def shown(erased: int) -> str:
        counts = TableReport(
            rows_in=5, accepted=3, quarantined=1, duplicates_dropped=1 - erased, erased=erased
        )
        report = IngestReport(extract_id="d", status="ingested", tables={"persons": counts})
        console = Console(record=True, width=160)
        render(report, console)
        return console.export_text()

    assert "erased" not in shown(0)
    with_erased = shown(1)
    assert "erased" in with_erased
    row = next(line for line in with_erased.splitlines() if "persons" in line)
    # rows in, accepted, quarantined, duplicates, erased
    assert re.findall(r"\b\d+\b", row) == ["5", "3", "1", "0", "1"]


def test_the_keyed_hasher_is_the_access_logs_pseudonym() -> None:
    key = b"k" * 100  # longer than a block: hashed first, as HMAC does
    for k in (key, b"short", pseudonym_key()):
        hasher = KeyedHasher(k)
        for person in ("P1", "élan", "x" * 300):
            assert hasher(person) == pseudonym(person, k)


def test_the_filter_hashes_ids_and_keeps_others() -> None:
    key = b"secret"
    erased = ErasedPersons([pseudonym("b", key), pseudonym("z", key)], key)
    frame = pl.LazyFrame({"person_id": ["a", "b", "c", "b", None], "x": [1, 2, 3, 4, 5]})
    kept = drop_erased(frame, erased).collect()
    assert kept["person_id"].to_list() == ["a", "c"] and kept["x"].to_list() == [1, 3]
    # the same rows as the filter on ids in clear (nulls included)
    assert kept.equals(drop_erased(frame, frozenset({"b", "z"})).collect())
    assert count_erased(frame.collect(), erased) == 2
    # another key recognises nobody
    other = ErasedPersons([pseudonym("b", b"other")], key)
    assert drop_erased(frame, other).collect().height == 4  # the null id is dropped, as before
    assert erased.holds("z") and not erased.holds("a")


def test_a_clear_tombstone_file_is_migrated_on_first_read(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    old = pl.DataFrame(
        {
            "person_id": ["P-victim", "P-other", "P-victim"],
            "erased_at": [datetime(2026, 1, 1, tzinfo=UTC)] * 3,
        },
        schema={"person_id": pl.String(), "erased_at": pl.Datetime("us", "UTC")},
    )
    old.write_parquet(erasures_path(root))
    key = pseudonym_key()
    erased = erased_ids(root)
    assert set(erased) == {pseudonym("P-victim", key), pseudonym("P-other", key)}
    raw = erasures_path(root).read_bytes()
    assert b"P-victim" not in raw and b"P-other" not in raw
    assert read_erasures(root).height == 2
    frame = pl.LazyFrame({"person_id": ["P-victim", "P-kept"]})
    assert drop_erased(frame, erased_ids(root)).collect()["person_id"].to_list() == ["P-kept"]
    assert not add_tombstone(root, "P-victim")  # already there, in its new form
    assert add_tombstone(root, "P-new") and erased_ids(root).holds("P-new")
