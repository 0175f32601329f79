"""A damaged, undefined or out-of-order delivery is refused whole and nothing is written."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from features.ingest import cli as ingest_cli
from features.ingest import ingest_delivery
from riskcast.errors import DeliveryRefused
from tests.factories import EXTRACTED_AT, set_value, valid_tables, write_delivery

LATER = EXTRACTED_AT + timedelta(days=31)


def snapshot(home: Path) -> dict[str, bytes]:
    return {
        p.relative_to(home).as_posix(): p.read_bytes()
        for p in sorted(home.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A store that already holds one delivery."""
    write_delivery(tmp_path / "d1", valid_tables(3, seed=1), extract_id="d1")
    ingest_delivery(tmp_path / "d1", tmp_path / "home")
    return tmp_path / "home"


def _manifest(folder: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((folder / "manifest.json").read_text())
    return data


def _edit_manifest(folder: Path, edit: Callable[[dict], None]) -> None:  # type: ignore[type-arg]
    data = _manifest(folder)
    edit(data)
    (folder / "manifest.json").write_text(json.dumps(data))


def _rewrite_file(folder: Path) -> None:
    frame = pl.read_parquet(folder / "criminal_cases.parquet")
    set_value(frame, 0, "article", "999").write_parquet(folder / "criminal_cases.parquet")


DAMAGE: dict[str, tuple[Callable[[Path], object], str]] = {
    "file changed after the manifest": (_rewrite_file, "criminal_cases: sha256 in manifest"),
    "wrong hash": (
        lambda d: _edit_manifest(d, lambda m: m["tables"]["appeals"].update(sha256="0" * 64)),
        "appeals: sha256 in manifest 000000000000… but file has",
    ),
    "wrong row count": (
        lambda d: _edit_manifest(d, lambda m: m["tables"]["incidents"].update(rows=99)),
        "incidents: manifest says 99 rows but incidents.parquet has",
    ),
    "missing file": (
        lambda d: (d / "releases.parquet").unlink(),
        "releases: releases.parquet is listed in the manifest but missing",
    ),
    "unlisted file": (
        lambda d: (d / "extra.csv").write_text("a\n1\n"),
        "extra.csv: in the delivery folder but not listed",
    ),
    "unlisted table file": (
        lambda d: _edit_manifest(d, lambda m: m["tables"].pop("appeals")),
        "appeals.parquet: in the delivery folder but not listed",
    ),
    "bad json": (lambda d: (d / "manifest.json").write_text("{"), "not valid JSON"),
    "no manifest": (lambda d: (d / "manifest.json").unlink(), "no manifest.json"),
    "wrong contract version": (
        lambda d: _edit_manifest(d, lambda m: m.update(contract_version=2)),
        "contract_version 2 is not supported",
    ),
    "unknown table": (
        lambda d: _edit_manifest(
            d, lambda m: m["tables"].update(names=dict(m["tables"]["appeals"]))
        ),
        "table 'names' is not defined by the contract",
    ),
    "path outside the folder": (
        lambda d: _edit_manifest(
            d, lambda m: m["tables"]["appeals"].update(file="../d1/appeals.parquet")
        ),
        "appeals: file '../d1/appeals.parquet' must name a file in the delivery folder",
    ),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damaged_delivery_is_refused_whole_and_nothing_is_written(
    case: str, home: Path, tmp_path: Path
) -> None:
    damage, message = DAMAGE[case]
    delivery = write_delivery(
        tmp_path / "d2", valid_tables(3, seed=2), extract_id="d2", extracted_at=LATER
    )
    damage(delivery)
    before = snapshot(home)
    with pytest.raises(DeliveryRefused) as refused:
        ingest_delivery(delivery, home)
    assert message in str(refused.value)
    assert snapshot(home) == before


def test_refused_first_delivery_creates_no_store(tmp_path: Path) -> None:
    delivery = write_delivery(tmp_path / "d", valid_tables(2))
    (delivery / "extra.parquet").write_bytes(b"")
    with pytest.raises(DeliveryRefused):
        ingest_delivery(delivery, tmp_path / "home")
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize("table", ["persons", "criminal_cases"])
def test_a_column_the_contract_does_not_define_is_refused_naming_it(
    table: str, home: Path, tmp_path: Path
) -> None:
    frames = valid_tables(3, seed=2)
    frames[table] = frames[table].with_columns(pl.lit("Jane Doe").alias("full_name"))
    delivery = write_delivery(tmp_path / "d2", frames, extract_id="d2", extracted_at=LATER)
    before = snapshot(home)
    with pytest.raises(DeliveryRefused, match=f"{table}: column 'full_name' is not defined"):
        ingest_delivery(delivery, home)
    assert snapshot(home) == before


@pytest.mark.parametrize("column", ["sex", "ethnicity"])
def test_a_missing_contract_column_is_refused_naming_it(
    column: str, home: Path, tmp_path: Path
) -> None:
    frames = valid_tables(3, seed=2)
    frames["persons"] = frames["persons"].drop(column)
    delivery = write_delivery(tmp_path / "d2", frames, extract_id="d2", extracted_at=LATER)
    before = snapshot(home)
    with pytest.raises(DeliveryRefused, match=f"persons: contract column '{column}' is missing"):
        ingest_delivery(delivery, home)
    assert snapshot(home) == before


@pytest.mark.parametrize("when", [EXTRACTED_AT, EXTRACTED_AT - timedelta(days=1)])
def test_a_delivery_not_later_than_the_last_is_refused(home: Path, tmp_path: Path, when) -> None:
    delivery = write_delivery(
        tmp_path / "d0", valid_tables(3, seed=5), extract_id="d0", extracted_at=when
    )
    before = snapshot(home)
    with pytest.raises(DeliveryRefused, match="is not later than"):
        ingest_delivery(delivery, home)
    assert snapshot(home) == before


def test_same_extract_id_with_another_manifest_is_refused(home: Path, tmp_path: Path) -> None:
    delivery = write_delivery(
        tmp_path / "again", valid_tables(3, seed=9), extract_id="d1", extracted_at=LATER
    )
    with pytest.raises(DeliveryRefused, match="already ingested with a different manifest"):
        ingest_delivery(delivery, home)


def test_reingesting_the_same_delivery_is_a_noop(home: Path, tmp_path: Path) -> None:
    before = snapshot(home)
    report = ingest_delivery(tmp_path / "d1", home)
    assert report.status == "already_ingested"
    assert report.tables["persons"].rows_in == 3
    assert snapshot(home) == before


# ---- command line -------------------------------------------------------------------------
def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """test root"""

    ingest_cli.register(app)
    return app


def test_cli_writes_the_report_json_and_refuses_with_exit_code_3(
    home: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    out = tmp_path / "report.json"
    result = runner.invoke(
        _app(), ["ingest", str(tmp_path / "d1"), "--home", str(home), "--report-json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "already ingested" in result.output
    assert json.loads(out.read_text())["status"] == "already_ingested"

    bad = write_delivery(
        tmp_path / "d2", valid_tables(2, seed=4), extract_id="d2", extracted_at=LATER
    )
    _edit_manifest(bad, lambda m: m["tables"]["persons"].update(rows=1))
    result = runner.invoke(
        _app(), ["ingest", str(bad), "--home", str(home), "--report-json", str(out)]
    )
    assert isinstance(result.exception, DeliveryRefused)
    assert result.exception.exit_code == 3
    payload = json.loads(out.read_text())
    assert payload["status"] == "refused" and payload["extract_id"] == "d2"
    assert payload["tables"] == {} and "persons: manifest says 1 rows" in payload["error"]


def test_cli_ingest_then_status(tmp_path: Path) -> None:
    runner = CliRunner()
    delivery = write_delivery(tmp_path / "d", valid_tables(3, seed=3), extract_id="first")
    out = tmp_path / "r.json"
    result = runner.invoke(
        _app(),
        ["ingest", str(delivery), "--home", str(tmp_path / "h"), "--report-json", str(out)],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    assert set(payload) == {"extract_id", "status", "tables"}
    assert payload["status"] == "ingested"
    assert payload["tables"]["persons"] == {
        "rows_in": 3,
        "accepted": 3,
        "quarantined": 0,
        "duplicates_dropped": 0,
        "rules": {},
    }
    result = runner.invoke(_app(), ["status", "--home", str(tmp_path / "h")])
    assert result.exit_code == 0, result.output
    assert "first" in result.output and "social_status" in result.output
