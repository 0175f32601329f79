"""The register simulator writes contract deliveries: deterministic, typed, valid, complete."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from features.contract import TABLE_ORDER, TABLES, ColumnType
from features.contract.manifest import read_manifest
from features.simulator import SimulationResult, SimulatorConfig, load_config, simulate
from riskcast.errors import ConfigError, InputError
from serving.cli import build_app
from tests.unit.features.controls_reference import expected_ingest

START = date(2016, 1, 1)
EXTRACTED = date(2025, 12, 31)
AS_OF = [date(2023, 12, 31), date(2024, 12, 31)]


def _run(out: Path, persons: int = 1500, seed: int = 11, **kwargs: object) -> SimulationResult:
    return simulate(out, persons, seed, START, EXTRACTED, as_of=AS_OF, **kwargs)  # type: ignore[arg-type]


def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    """3 000 persons in three chunks, no corruption."""
    return _run(tmp_path_factory.mktemp("clean") / "d1", persons=3000, chunk_size=1000)


def test_same_seed_gives_the_same_bytes_and_another_seed_other_bytes(tmp_path: Path) -> None:
    a = _run(tmp_path / "a", chunk_size=600, corrupt_rate=0.02)
    b = _run(tmp_path / "b", chunk_size=600, corrupt_rate=0.02)
    c = _run(tmp_path / "c", chunk_size=600, corrupt_rate=0.02, seed=12)
    assert _bytes(a.delivery) == _bytes(b.delivery)
    assert _bytes(a.truth) == _bytes(b.truth)
    files_a, files_c = _bytes(a.delivery), _bytes(c.delivery)
    for table in TABLE_ORDER:
        assert files_a[f"{table}.parquet"] != files_c[f"{table}.parquet"], table
    assert _bytes(a.truth)["labels.parquet"] != _bytes(c.truth)["labels.parquet"]


def test_manifest_names_every_table_with_its_hash_and_row_count(clean: SimulationResult) -> None:
    manifest = read_manifest(clean.delivery)
    assert manifest.extract_id == "2025-12-31-sim-s11" == clean.extract_id
    assert manifest.extracted_at == datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert list(manifest.tables) == list(TABLE_ORDER)
    for name, entry in manifest.tables.items():
        path = clean.delivery / entry.file
        assert entry.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert entry.rows == pq.ParquetFile(path).metadata.num_rows == clean.rows[name]
        assert entry.rows > 0, name
    assert sorted(p.name for p in clean.delivery.iterdir()) == sorted(
        [f"{t}.parquet" for t in TABLE_ORDER] + ["manifest.json"]
    )
    assert clean.truth == clean.delivery.parent / "d1_truth"


_ARROW = {
    ColumnType.DATE: "date32[day]",
    ColumnType.TS: "timestamp[us, tz=UTC]",
    ColumnType.STR: "large_string",
    ColumnType.ENUM: "large_string",
    ColumnType.INT: "int64",
    ColumnType.FLOAT: "double",
    ColumnType.BOOL: "bool",
}


def test_every_table_has_the_contract_columns_types_and_enum_values(
    clean: SimulationResult,
) -> None:
    for name, t in TABLES.items():
        path = clean.delivery / f"{name}.parquet"
        arrow = pq.read_schema(path)
        assert arrow.names == t.column_names
        for col in t.columns:
            assert str(arrow.field(col.name).type) == _ARROW[col.type], (name, col.name)
        frame = pl.read_parquet(path)
        assert dict(frame.schema) == t.schema
        for col in t.columns:
            if not col.nullable:
                assert frame[col.name].null_count() == 0, (name, col.name)
            if col.type is ColumnType.ENUM:
                assert set(frame[col.name].drop_nulls().unique()) <= set(col.values)


def test_a_clean_delivery_passes_every_control_and_the_ledger_says_so(
    clean: SimulationResult,
) -> None:
    counts = expected_ingest(clean.delivery)
    for name, c in counts["tables"].items():
        assert c["quarantined"] == 0 and c["duplicates_dropped"] == 0 and c["rules"] == {}, name
        assert c["accepted"] == clean.rows[name]
    ledger = json.loads((clean.truth / "expected-ingest.json").read_text())
    assert ledger == counts == clean.ledger


def test_the_reference_recount_reproduces_the_third_party_fixture() -> None:
    fixture = Path(__file__).resolve().parents[2] / "fixtures" / "third-party-delivery"
    expected = json.loads((fixture / "expected-ingest.json").read_text())
    assert expected_ingest(fixture / "delivery-2025-12") == expected


def test_the_register_has_the_shapes_the_contract_allows(clean: SimulationResult) -> None:
    d = clean.delivery
    cases = pl.read_parquet(d / "criminal_cases.parquet")
    persons = pl.read_parquet(d / "persons.parquet")
    status = pl.read_parquet(d / "social_status.parquet")
    obligations = pl.read_parquet(d / "obligations.parquet")
    admin = pl.read_parquet(d / "admin_offences.parquet")
    assert (
        cases.group_by("case_id")
        .agg(pl.col("person_id").n_unique())
        .filter(pl.col("person_id") > 1)
        .height
        > 0
    ), "some cases are shared by several persons"
    assert set(cases["outcome"]) >= {"pending", "convicted", "terminated_other"}
    assert persons.filter(~pl.col("person_id").is_in(status["person_id"].implode())).height > 0
    assert status["valid_to"].null_count() > 0 and status["valid_to"].null_count() < status.height
    partial = obligations.filter(
        (pl.col("paid_amount") > 0) & (pl.col("paid_amount") < pl.col("amount"))
    )
    assert partial.height > 0 and partial["paid_at"].null_count() == partial.height
    assert obligations.filter(pl.col("paid_at") > pl.col("due_at")).height > 0  # paid late
    assert set(admin["detected_by"]) == {"camera", "officer", "complaint"}
    assert (admin["sanction"] == "fine").sum() == admin["fine_amount"].is_not_null().sum()
    districts = set(persons["district"].drop_nulls())
    assert {"ALA-U1", "AST-R1", "SHY-U5", "KAR-R3"} <= districts
    assert persons["ethnicity"].drop_nulls().unique().sort().to_list() == ["E1", "E2", "E3", "E4"]


def test_registration_lags_behind_offences_with_a_heavy_tail(clean: SimulationResult) -> None:
    cases = pl.read_parquet(clean.delivery / "criminal_cases.parquet")
    lag = (cases["registered_at"].dt.date() - cases["offence_date"]).dt.total_days().to_numpy()
    assert lag.min() >= 0
    assert (lag == 0).mean() > 0.2  # many registered the same day
    assert (lag > 90).mean() > 0.05  # a visible share months later
    assert lag.max() > 365  # and some more than a year later


def test_incidents_lie_around_the_real_cities(clean: SimulationResult) -> None:
    incidents = pl.read_parquet(clean.delivery / "incidents.parquet")
    centres = {
        "AST": (51.17, 71.45),
        "ALA": (43.24, 76.89),
        "SHY": (42.34, 69.59),
        "KAR": (49.80, 73.11),
    }
    for region, (lat, lon) in centres.items():
        sub = incidents.filter(pl.col("region") == region)
        assert sub.height > 0
        assert abs(sub["lat"].median() - lat) < 0.1 and abs(sub["lon"].median() - lon) < 0.15  # type: ignore[operator]
        assert sub["district"].str.starts_with(region).all()
    assert (incidents["occurred_at"] <= incidents["registered_at"]).all()


def test_an_as_of_whose_window_ends_after_extraction_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"2025-06-30.*after extracted_at 2025-12-31"):
        simulate(tmp_path / "x", 100, 1, START, EXTRACTED, as_of=[date(2025, 6, 30)])
    with pytest.raises(InputError, match="second delivery"):
        simulate(tmp_path / "x", 100, 1, START, EXTRACTED, second_delivery_at=date(2025, 1, 1))
    assert not (tmp_path / "x").exists()


def test_an_existing_delivery_is_not_overwritten_by_accident(tmp_path: Path) -> None:
    _run(tmp_path / "d", persons=200)
    with pytest.raises(InputError, match="not empty"):
        _run(tmp_path / "d", persons=200)
    again = _run(tmp_path / "d", persons=200, seed=12, overwrite=True)
    assert read_manifest(again.delivery).extract_id.endswith("-s12")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_the_cli_writes_a_delivery_and_prints_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    args = [
        "simulate", "--out", str(out), "--persons", "300", "--seed", "3",
        "--start", "2016-01-01", "--extracted-at", "2025-12-31", "--as-of", "2024-12-31",
        "--corrupt-rate", "0.02",
    ]  # fmt: skip
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    assert "2025-12-31-sim-s3" in result.output and "criminal_cases" in result.output
    assert read_manifest(out).extract_id == "2025-12-31-sim-s3"
    labels = pl.read_parquet(tmp_path / "cli_truth" / "labels.parquet")
    assert labels.height == 300 and labels["as_of"].unique().to_list() == [date(2024, 12, 31)]


def test_parameters_come_from_yaml_and_unknown_ones_are_refused(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("crime:\n  monthly_rate: 0.0003\n  detection_bias: []\n", encoding="utf-8")
    cfg = load_config(good)
    assert cfg.crime.monthly_rate == 0.0003 and cfg.crime.detection_bias == []
    assert cfg.admin == SimulatorConfig().admin  # the rest keeps its defaults
    bad = tmp_path / "bad.yaml"
    bad.write_text("crime:\n  monthly_rat: 0.0003\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="monthly_rat"):
        load_config(bad)
    wrong_key = tmp_path / "wrong.yaml"
    wrong_key.write_text("crime:\n  status_multiplier: {jobless: 2.0}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="jobless"):
        load_config(wrong_key)
