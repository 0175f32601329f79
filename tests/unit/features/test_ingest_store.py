"""Ingest into the store: the third-party fixture, CSV = Parquet, versions, crash safety."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.ingest import buckets as ingest_versions  # where merge_versions is called
from features.ingest import ingest_delivery
from features.store.offline import OfflineStore, StoreWriter
from tests.factories import EXTRACTED_AT, set_value, valid_tables, write_delivery

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "third-party-delivery"
LATER = EXTRACTED_AT + timedelta(days=31)  # 2026-01-31T23:59:59Z


def test_third_party_delivery_gives_exactly_the_expected_counts(tmp_path: Path) -> None:
    expected = json.loads((FIXTURE / "expected-ingest.json").read_text())
    report = ingest_delivery(FIXTURE / "delivery-2025-12", tmp_path / "home")
    got = report.to_json_dict()
    assert got["status"] == "ingested"
    assert got["extract_id"] == expected["extract_id"]
    assert got["tables"] == expected["tables"]
    stored = OfflineStore(tmp_path / "home").read_report(expected["extract_id"])
    assert stored["tables"] == expected["tables"]


def _damaged(seed: int) -> dict[str, pl.DataFrame]:
    frames = valid_tables(5, seed=seed)
    frames["persons"] = pl.concat([frames["persons"], frames["persons"].slice(1, 1)])
    frames["persons"] = set_value(frames["persons"], 2, "sex", "X")
    frames["obligations"] = set_value(frames["obligations"], 0, "amount", "12,5")
    frames["incidents"] = set_value(frames["incidents"], 1, "lat", 123.0)
    frames["criminal_cases"] = set_value(frames["criminal_cases"], 3, "street", None)
    return frames


def _store_frames(home: Path) -> dict[str, pl.DataFrame]:
    store = OfflineStore(home)
    state = store.state()
    out = {name: pl.read_parquet(store.root / rel) for name, rel in state.tables.items()}
    for extract, tables in state.quarantine.items():
        for name, rel in tables.items():
            out[f"quarantine/{extract}/{name}"] = pl.read_parquet(store.root / rel)
    return out


def _assert_same_store(a: Path, b: Path) -> None:
    left, right = _store_frames(a), _store_frames(b)
    assert left.keys() == right.keys()
    for key in left:
        assert_frame_equal(left[key], right[key], check_row_order=True)


def test_csv_and_parquet_give_the_same_result(tmp_path: Path) -> None:
    frames = _damaged(3)
    pq_report = ingest_delivery(
        write_delivery(tmp_path / "pq", frames, extract_id="x"), tmp_path / "home-pq"
    )
    csv_report = ingest_delivery(
        write_delivery(tmp_path / "csv", frames, extract_id="x", fmt="csv"), tmp_path / "home-csv"
    )
    assert pq_report.tables["persons"].duplicates_dropped == 1
    assert pq_report.tables["obligations"].rules["obligations.amount_type"] == 1
    assert csv_report.to_json_dict() == pq_report.to_json_dict()
    _assert_same_store(tmp_path / "home-pq", tmp_path / "home-csv")


def _second_delivery(first: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Later delivery: person 1 corrected, person 2 deleted, person 9 new, a bad case row."""
    persons = first["persons"]
    new_person = persons.slice(0, 1).with_columns(pl.lit("PNEW").alias("person_id"))
    persons = pl.concat([set_value(persons, 1, "region", "KAR"), new_person])
    persons = persons.filter(pl.col("person_id") != persons.get_column("person_id")[2])
    cases = set_value(first["criminal_cases"], 0, "category", "bogus")  # quarantined now
    cases = cases.filter(pl.col("person_id") != first["persons"].get_column("person_id")[2])
    spells = set_value(first["social_status"], 0, "valid_to", date(2025, 6, 30))
    spells = spells.filter(pl.col("person_id") != first["persons"].get_column("person_id")[2])
    # every table repeats its rows except appeals, which is absent: no news
    out = {name: frame for name, frame in first.items() if name != "appeals"}
    pid_gone = first["persons"].get_column("person_id")[2]
    for name in ("admin_offences", "obligations", "releases"):
        out[name] = out[name].filter(pl.col("person_id") != pid_gone)
    out.update(persons=persons, criminal_cases=cases, social_status=spells)
    return out


def test_successive_delivery_versions_corrections_and_deletions(tmp_path: Path) -> None:
    first = valid_tables(4, seed=11)
    ids = first["persons"].get_column("person_id").to_list()
    home = tmp_path / "home"
    ingest_delivery(write_delivery(tmp_path / "d1", first, extract_id="d1"), home)
    second = _second_delivery(first)
    report = ingest_delivery(
        write_delivery(tmp_path / "d2", second, extract_id="d2", extracted_at=LATER), home
    )
    assert report.tables["criminal_cases"].rules == {"criminal_cases.category_enum": 1}
    store = OfflineStore(home)
    state = store.state()
    assert state.tables["appeals"].startswith("tables/appeals/00001-")  # absent: unchanged file

    persons = store.scan("persons").collect()
    versions = persons.group_by("person_id").len().sort("person_id")
    assert dict(versions.iter_rows()) == {ids[0]: 1, ids[1]: 2, ids[2]: 1, ids[3]: 1, "PNEW": 1}
    v = {(r["person_id"], r["region"] == "KAR"): r for r in persons.iter_rows(named=True)}
    old, new = v[(ids[1], False)], v[(ids[1], True)]
    assert old["_valid_from"] is None and old["_valid_to"] == LATER and old["_extract_id"] == "d1"
    assert new["_valid_from"] == LATER and new["_valid_to"] is None and new["_extract_id"] == "d2"
    deleted = v[(ids[2], persons.filter(pl.col("person_id") == ids[2])["region"][0] == "KAR")]
    assert deleted["_valid_to"] == LATER and deleted["_extract_id"] == "d1"
    unchanged = v[(ids[0], False)] if (ids[0], False) in v else v[(ids[0], True)]
    assert unchanged["_valid_from"] is None and unchanged["_valid_to"] is None
    assert unchanged["_extract_id"] == "d1"
    brand_new = v[("PNEW", persons.filter(pl.col("person_id") == "PNEW")["region"][0] == "KAR")]
    # persons have no knowledge time: a newcomer is known from its first delivery on
    assert brand_new["_valid_from"] == LATER and brand_new["_extract_id"] == "d2"

    before, after = date(2026, 1, 30), date(2026, 1, 31)
    seen_before = store.scan_as_of("persons", before).collect()
    seen_after = store.scan_as_of("persons", after).collect()
    assert sorted(seen_before["person_id"]) == sorted(ids)
    assert sorted(seen_after["person_id"]) == sorted([ids[0], ids[1], ids[3], "PNEW"])
    assert seen_before.filter(pl.col("person_id") == ids[1])["region"][0] != "KAR"
    assert seen_after.filter(pl.col("person_id") == ids[1])["region"][0] == "KAR"

    # a quarantined correction does not supersede: the earlier case version stays current
    cases = store.scan("criminal_cases").collect()
    bad_id = first["criminal_cases"]["record_id"][0]
    assert cases.filter(pl.col("record_id") == bad_id)["_valid_to"].to_list() == [None]
    gone = cases.filter(pl.col("person_id") == ids[2])
    assert gone["_valid_to"].to_list() == [LATER]

    # natural-key table: a changed spell closes the old version and opens a new one
    spells = store.scan("social_status").collect()
    key = first["social_status"].row(0, named=True)
    same_key = spells.filter(
        (pl.col("person_id") == key["person_id"])
        & (pl.col("status") == key["status"])
        & (pl.col("valid_from") == key["valid_from"])
    ).sort("_valid_to", nulls_last=True)
    assert same_key["_valid_to"].to_list() == [LATER, None]
    assert same_key["_valid_from"].to_list() == [None, LATER]
    assert same_key["valid_to"].to_list() == [key["valid_to"], date(2025, 6, 30)]
    assert (
        store.scan_as_of("social_status", before).collect().height == first["social_status"].height
    )


def test_row_back_after_deletion_is_known_from_its_delivery_only(tmp_path: Path) -> None:
    first = valid_tables(3, seed=12)
    home = tmp_path / "home"
    ingest_delivery(write_delivery(tmp_path / "d1", first, extract_id="d1"), home)
    without = {"incidents": first["incidents"].slice(1)}
    ingest_delivery(
        write_delivery(tmp_path / "d2", without, extract_id="d2", extracted_at=LATER), home
    )
    third = LATER + timedelta(days=28)
    ingest_delivery(
        write_delivery(
            tmp_path / "d3", {"incidents": first["incidents"]}, extract_id="d3", extracted_at=third
        ),
        home,
    )
    store = OfflineStore(home)
    back = (
        store.scan("incidents")
        .filter(pl.col("incident_id") == first["incidents"]["incident_id"][0])
        .collect()
    )
    assert back.select("_valid_from", "_valid_to").rows() == [(None, LATER), (third, None)]
    for as_of in (date(2026, 1, 1), date(2026, 2, 10), date(2026, 3, 1)):
        seen = store.scan_as_of("incidents", as_of).collect()
        assert seen["incident_id"].is_unique().all()


def test_row_quarantined_then_fixed_is_not_visible_before_the_fixing_delivery(
    tmp_path: Path,
) -> None:
    """A case rejected in delivery 1 and delivered intact in delivery 2 was unknown to us
    until delivery 2: features as of earlier dates must not see it retroactively."""
    first = valid_tables(3, seed=21)
    case_id = first["criminal_cases"]["record_id"][0]
    broken = {**first, "criminal_cases": set_value(first["criminal_cases"], 0, "article", None)}
    home = tmp_path / "home"
    report = ingest_delivery(write_delivery(tmp_path / "d1", broken, extract_id="d1"), home)
    assert report.tables["criminal_cases"].quarantined == 1
    store = OfflineStore(home)
    before = store.scan_as_of("criminal_cases", EXTRACTED_AT.date()).collect()
    assert case_id not in before["record_id"].to_list()

    ingest_delivery(
        write_delivery(tmp_path / "d2", first, extract_id="d2", extracted_at=LATER), home
    )
    for as_of in (EXTRACTED_AT.date() - timedelta(days=400), EXTRACTED_AT.date()):
        seen = store.scan_as_of("criminal_cases", as_of).collect()
        assert case_id not in seen["record_id"].to_list(), as_of
    assert (
        case_id in store.scan_as_of("criminal_cases", LATER.date()).collect()["record_id"].to_list()
    )


def test_person_first_delivered_later_is_known_from_that_delivery(tmp_path: Path) -> None:
    first = valid_tables(3, seed=22)
    newcomer = valid_tables(1, seed=23, prefix="Q")["persons"]
    home = tmp_path / "home"
    ingest_delivery(write_delivery(tmp_path / "d1", first, extract_id="d1"), home)
    persons = pl.concat([first["persons"], newcomer])
    ingest_delivery(
        write_delivery(tmp_path / "d2", {"persons": persons}, extract_id="d2", extracted_at=LATER),
        home,
    )
    store = OfflineStore(home)
    new_id = newcomer["person_id"][0]
    assert (
        new_id
        not in store.scan_as_of("persons", EXTRACTED_AT.date()).collect()["person_id"].to_list()
    )
    assert new_id in store.scan_as_of("persons", LATER.date()).collect()["person_id"].to_list()
    # the first delivery's persons are the register's back-filled state: known throughout
    early = store.scan_as_of("persons", date(2010, 1, 1)).collect()["person_id"].to_list()
    assert sorted(early) == sorted(first["persons"]["person_id"].to_list())


def test_a_crash_before_commit_leaves_the_store_intact_and_a_rerun_is_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = valid_tables(4, seed=21)
    second = _second_delivery(first)
    d1 = write_delivery(tmp_path / "d1", first, extract_id="d1")
    d2 = write_delivery(tmp_path / "d2", second, extract_id="d2", extracted_at=LATER)
    home, clean = tmp_path / "home", tmp_path / "clean"
    for h in (home, clean):
        ingest_delivery(d1, h)
    state_before = (home / "store" / "state.json").read_bytes()
    frames_before = _store_frames(home)

    calls = {"n": 0}
    real_merge = ingest_versions.merge_versions

    def crashing_merge(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # persons and social_status are already staged
            raise RuntimeError("power cut")
        return real_merge(*args, **kwargs)

    monkeypatch.setattr(ingest_versions, "merge_versions", crashing_merge)
    with pytest.raises(RuntimeError, match="power cut"):
        ingest_delivery(d2, home)
    monkeypatch.setattr(ingest_versions, "merge_versions", real_merge)

    def crashing_commit(self: StoreWriter, new_state: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(StoreWriter, "commit", crashing_commit)
    with pytest.raises(RuntimeError, match="disk full"):
        ingest_delivery(d2, home)
    monkeypatch.undo()

    assert (home / "store" / "state.json").read_bytes() == state_before
    after_crash = _store_frames(home)
    for key, frame in frames_before.items():
        assert_frame_equal(after_crash[key], frame)
    with pytest.raises(Exception, match="no ingest report"):
        OfflineStore(home).read_report("d2")  # the staged report is not committed

    rerun = ingest_delivery(d2, home)
    reference = ingest_delivery(d2, clean)
    assert rerun.to_json_dict() == reference.to_json_dict()
    _assert_same_store(home, clean)
    committed = {p.relative_to(home).as_posix() for p in (home / "store").rglob("*.parquet")}
    assert committed == {
        p.relative_to(clean).as_posix() for p in (clean / "store").rglob("*.parquet")
    }
