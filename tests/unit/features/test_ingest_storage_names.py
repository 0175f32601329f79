"""Deliveries whose ids sanitise alike keep their own quarantine, report and status counts.

The demo lost a quarantine this way: ``sim_1`` and ``sim/1`` were both stored as ``sim_1``, so
the second delivery's (empty) quarantine and report replaced the first one's.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from datetime import timedelta
from pathlib import Path, PurePosixPath

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from features.contract import TABLE_ORDER
from features.ingest import ingest_delivery, store_status
from features.ingest.status import render_status
from features.store import offline
from features.store.offline import OfflineStore
from riskcast.errors import DeliveryRefused, StoreError
from tests.factories import EXTRACTED_AT, set_value, valid_tables, write_delivery

LATER = EXTRACTED_AT + timedelta(days=31)
FIRST_BAD = {"incidents": 2, "obligations": 1}
"""Rows the first delivery of each pair quarantines; the second quarantines none."""

COLLIDING = [
    ("sim_1", "sim/1"),  # the attack on the demo
    ("sim/1", "sim_1"),
    ("sim_1", "sim\\1"),
    ("sim:1", "sim 1"),
    ("SIM_1", "sim_1"),  # one name on a case-insensitive file system
    ("../sim_1", ".._sim_1"),  # `..` and a separator
    ("..", "d2"),  # was quarantine/../<table>.parquet: outside the quarantine folder
    (".", "d2"),  # was quarantine/./<table>.parquet: the commit's clean-up deleted it
    ("x" * 300, "x" * 301),  # longer than a file name may be
    ("sim\u00e9", "sime\u0301"),  # NFC and NFD: one name where the file system normalises
]


def _delivery(folder: Path, extract_id: str, *, later: bool, bad: bool) -> Path:
    frames = valid_tables(4, seed=2 if later else 1)
    if bad:
        incidents = set_value(frames["incidents"], 0, "lat", 123.0)
        frames["incidents"] = set_value(incidents, 2, "lat", -95.0)
        frames["obligations"] = set_value(frames["obligations"], 1, "amount", "12,5")
    at = LATER if later else EXTRACTED_AT
    return write_delivery(folder, frames, extract_id=extract_id, extracted_at=at)


def _expected(bad: bool) -> dict[str, int]:
    return {t: FIRST_BAD.get(t, 0) if bad else 0 for t in TABLE_ORDER}


def snapshot(home: Path) -> dict[str, bytes]:
    return {p.relative_to(home).as_posix(): p.read_bytes() for p in home.rglob("*") if p.is_file()}


@pytest.mark.parametrize(("first_id", "second_id"), COLLIDING)
def test_two_deliveries_whose_ids_sanitise_alike_keep_their_own_quarantine_and_report(
    tmp_path: Path, first_id: str, second_id: str
) -> None:
    home = tmp_path / "home"
    d1 = _delivery(tmp_path / "d1", first_id, later=False, bad=True)
    d2 = _delivery(tmp_path / "d2", second_id, later=True, bad=False)
    r1 = ingest_delivery(d1, home)
    r2 = ingest_delivery(d2, home)
    assert {t: r.quarantined for t, r in r1.tables.items()} == _expected(True)
    assert {t: r.quarantined for t, r in r2.tables.items()} == _expected(False)

    # what `riskcast status` shows: each delivery with its own exact counts
    status = store_status(home)
    assert [d.extract_id for d in status.deliveries] == [first_id, second_id]
    assert status.quarantine == {first_id: _expected(True), second_id: _expected(False)}

    store = OfflineStore(home)
    state = store.state()
    incidents = pl.read_parquet(store.root / state.quarantine[first_id]["incidents"])
    assert incidents.get_column("_row").to_list() == [1, 3]
    assert incidents.get_column("lat").to_list() == ["123.0", "-95.0"]
    assert store.read_report(first_id)["tables"] == r1.to_json_dict()["tables"]
    assert store.read_report(second_id)["tables"] == r2.to_json_dict()["tables"]

    # every name is one path component inside its folder, and no two deliveries share one
    folders: dict[str, set[str]] = {}
    for extract, paths in state.quarantine.items():
        for table, rel in paths.items():
            parts = PurePosixPath(rel).parts
            assert parts[0] == "quarantine" and parts[2] == f"{table}.parquet" and len(parts) == 3
            assert not parts[1].startswith(".")
            folders.setdefault(extract, set()).add(parts[1].casefold())
    assert all(len(names) == 1 for names in folders.values())
    assert folders[first_id].isdisjoint(folders[second_id])
    reports = [PurePosixPath(d.report) for d in state.deliveries]
    assert all(r.parent == PurePosixPath("reports") for r in reports)
    assert reports[0].name.casefold() != reports[1].name.casefold()
    quarantine_root = (store.root / "quarantine").resolve()
    for paths in state.quarantine.values():
        for rel in paths.values():
            assert (store.root / rel).resolve().is_relative_to(quarantine_root)

    # ingesting either delivery again is still a no-op that answers with its own report
    before = snapshot(home)
    again1, again2 = ingest_delivery(d1, home), ingest_delivery(d2, home)
    assert again1.status == again2.status == "already_ingested"
    assert again1.to_json_dict()["tables"] == r1.to_json_dict()["tables"]
    assert again2.to_json_dict()["tables"] == r2.to_json_dict()["tables"]
    assert snapshot(home) == before
    assert store_status(home).lost_quarantine == {}


def test_status_shows_each_delivery_with_its_own_quarantine_count(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ingest_delivery(_delivery(tmp_path / "d1", "sim_1", later=False, bad=True), home)
    ingest_delivery(_delivery(tmp_path / "d2", "sim/1", later=True, bad=False), home)
    out = io.StringIO()
    render_status(store_status(home), Console(file=out, width=200, color_system=None))
    rows = {
        cells[0]: cells[-1]
        for line in out.getvalue().splitlines()
        if len(cells := [c.strip() for c in line.strip("│┃ ").split("│")]) == 5
    }
    assert rows["sim_1"] == "3" and rows["sim/1"] == "0"


# ---- the scheme --------------------------------------------------------------------------
NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,39}-[0-9a-f]{16}")


def test_storage_names_are_readable_distinct_and_single_path_components() -> None:
    ids = [i for pair in COLLIDING for i in pair] + ["2026-06-30-national", "", "/", "a" * 40]
    names = [offline.storage_name(i) for i in ids]
    assert all(NAME.fullmatch(n) for n in names), names
    assert len({n.casefold() for n in names}) == len(set(ids))
    assert offline.storage_name("2026-06-30-national").startswith("2026-06-30-national-")
    assert offline.storage_name("sim/1").startswith("sim_1-")
    assert offline.storage_name("sim/1") == offline.storage_name("sim/1")  # stable


@given(st.text(max_size=300))
def test_any_id_gives_a_short_single_component_name(extract_id: str) -> None:
    assert NAME.fullmatch(offline.storage_name(extract_id))


def test_a_name_already_used_is_refused_not_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even a digest collision cannot make one delivery overwrite another's files."""
    home = tmp_path / "home"
    ingest_delivery(_delivery(tmp_path / "d1", "a", later=False, bad=True), home)
    monkeypatch.setattr(offline, "storage_name", lambda extract_id: "same-0123456789abcdef")
    ingest_delivery(_delivery(tmp_path / "d2", "b", later=True, bad=False), home)
    # another id whose name differs only in case: one folder on a case-insensitive disk
    monkeypatch.setattr(offline, "storage_name", lambda extract_id: "SAME-0123456789ABCDEF")
    before = snapshot(home)
    at = LATER + timedelta(days=1)
    d3 = write_delivery(tmp_path / "d3", valid_tables(2, seed=3), extract_id="c", extracted_at=at)
    with pytest.raises(DeliveryRefused, match="which extract 'b' already uses"):
        ingest_delivery(d3, home)
    assert snapshot(home) == before


def test_the_writer_never_overwrites_a_committed_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ingest_delivery(_delivery(tmp_path / "d1", "d1", later=False, bad=True), home)
    store = OfflineStore(home)
    committed = store.state()
    before = snapshot(home)
    with store.writer() as writer:
        with pytest.raises(StoreError, match="refusing to overwrite"):
            writer.write_json({}, committed.deliveries[0].report)
        with pytest.raises(StoreError, match="refusing to overwrite"):
            writer.write_parquet(pl.DataFrame({"a": [1]}), committed.quarantine["d1"]["persons"])
        with pytest.raises(StoreError, match="outside the store"):
            writer.write_json({}, "quarantine/../../escape.json")
    assert snapshot(home) == before


def test_an_extract_id_that_is_not_unicode_text_is_refused(tmp_path: Path) -> None:
    """It could be neither a file name nor a Parquet string: refused before anything else."""
    delivery = _delivery(tmp_path / "d1", "x", later=False, bad=False)
    manifest = json.loads((delivery / "manifest.json").read_text())
    manifest["extract_id"] = "x\ud800"  # valid JSON ("x\\ud800"), but no file name or Parquet
    (delivery / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DeliveryRefused, match="extract_id: Input should be a valid string"):
        ingest_delivery(delivery, tmp_path / "home")
    assert not (tmp_path / "home").exists()


# ---- stores written with the old names ---------------------------------------------------
def _old_name(extract_id: str) -> str:
    """The sanitisation riskcast used before `storage_name`."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in extract_id)


def _to_old_layout(home: Path) -> None:
    """Rewrite a store as the old code left it: files under the bare sanitised id, moved in
    ingest order so that a later delivery whose id sanitised alike overwrites an earlier one."""
    store = OfflineStore(home)
    raw = json.loads(store.state_path.read_text())
    for delivery in raw["deliveries"]:
        extract, name = delivery["extract_id"], _old_name(delivery["extract_id"])
        moves = {delivery["report"]: f"reports/{name}.json"}
        for table, rel in raw["quarantine"][extract].items():
            moves[rel] = f"quarantine/{name}/{table}.parquet"
        for old, new in moves.items():
            (store.root / new).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(store.root / old, store.root / new)
        delivery["report"] = moves[delivery["report"]]
        raw["quarantine"][extract] = {
            table: moves[rel] for table, rel in raw["quarantine"][extract].items()
        }
    store.state_path.write_text(json.dumps(raw, indent=2))


def test_a_store_written_with_the_old_names_stays_readable_and_grows(tmp_path: Path) -> None:
    home = tmp_path / "home"
    d1 = _delivery(tmp_path / "d1", "d1", later=False, bad=True)
    ingest_delivery(d1, home)
    _to_old_layout(home)
    assert (
        OfflineStore(home).state().quarantine["d1"]["incidents"]
        == "quarantine/d1/incidents.parquet"
    )
    assert store_status(home).quarantine == {"d1": _expected(True)}
    assert ingest_delivery(d1, home).status == "already_ingested"

    ingest_delivery(_delivery(tmp_path / "d2", "d1/", later=True, bad=False), home)
    status = store_status(home)
    assert status.quarantine == {"d1": _expected(True), "d1/": _expected(False)}
    assert status.lost_quarantine == {}
    state = OfflineStore(home).state()
    assert state.quarantine["d1"]["incidents"] == "quarantine/d1/incidents.parquet"  # kept
    assert state.quarantine["d1/"]["incidents"].startswith("quarantine/d1_-")


def test_status_of_an_old_store_that_lost_a_quarantine_says_so(tmp_path: Path) -> None:
    home = tmp_path / "home"
    d1 = _delivery(tmp_path / "d1", "sim_1", later=False, bad=True)
    ingest_delivery(d1, home)
    ingest_delivery(_delivery(tmp_path / "d2", "sim/1", later=True, bad=False), home)
    _to_old_layout(home)  # as the demo's store was: sim/1 overwrote sim_1's files

    status = store_status(home)
    assert status.quarantine == {"sim_1": {}, "sim/1": _expected(False)}
    assert status.lost_quarantine == {
        "sim_1": {t: "overwritten by extract 'sim/1'" for t in TABLE_ORDER}
    }
    with pytest.raises(StoreError, match="holds that of extract 'sim/1'"):
        OfflineStore(home).read_report("sim_1")
    with pytest.raises(StoreError, match="holds that of extract 'sim/1'"):
        ingest_delivery(d1, home)  # not "a different manifest": we cannot tell any more
