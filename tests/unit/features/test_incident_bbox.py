"""Incidents outside their region's bounding box are quarantined with their rule; nothing lost."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from features.cells.config import RegionBox, load_places_config
from features.contract import RULES_BY_ID, RuleContext
from features.contract.controls import configured_region_bounds
from features.ingest import ingest_delivery
from features.ingest.validate import validate_frames
from features.simulator.codes import DISTRICTS, REGION_CODES
from riskcast.errors import ConfigError
from tests.factories import CITY, EXTRACTED_AT, typed_frame, write_delivery

RULE = "incidents.outside_region_bbox"
ROOT = Path(__file__).resolve().parents[3]
FIXTURE = ROOT / "tests" / "fixtures" / "third-party-delivery"
ALA = RegionBox(min_lat=42.0, max_lat=44.5, min_lon=75.2, max_lon=78.6)


def _incidents(points: list[tuple[str, float | None, float | None]]) -> pl.DataFrame:
    t0 = datetime(2025, 6, 1, 12, tzinfo=UTC)
    rows = [
        {
            "incident_id": f"IN{i:04d}",
            "occurred_at": t0 + timedelta(hours=i),
            "registered_at": t0 + timedelta(hours=i + 1),
            "region": region,
            "district": None,
            "lat": lat,
            "lon": lon,
            "crime_type": "theft",
        }
        for i, (region, lat, lon) in enumerate(points)
    ]
    return typed_frame("incidents", rows)


def test_the_rule_is_a_contract_control_with_a_readable_message() -> None:
    r = RULES_BY_ID[RULE]
    assert r.table == "incidents" and set(r.columns) == {"lat", "lon", "region"}
    assert "bounding box" in r.message


def test_one_far_incident_is_quarantined_with_the_rule_and_the_others_accepted() -> None:
    frame = _incidents(
        [("ALA", 43.25, 76.9), ("ALA", 51.1, 71.4), ("ALA", 42.0, 78.6), ("AST", 0.0, 0.0)]
    )
    ctx = RuleContext(EXTRACTED_AT, region_bounds={"ALA": ALA})
    out = validate_frames({"incidents": frame}, ctx)["incidents"]
    assert out.rule_counts == {RULE: 1}  # AST has no box here: not checked; edges are inside
    assert out.quarantine.get_column("_row").to_list() == [2]
    assert out.quarantine.get_column("_rules").to_list() == [[RULE]]
    assert out.accepted.get_column("_row").to_list() == [1, 3, 4]
    assert out.accepted.height + out.quarantined + out.duplicates_dropped == out.rows_in == 4


def test_off_globe_and_missing_coordinates_break_their_own_rules_only() -> None:
    frame = _incidents([("ALA", 95.0, 76.9), ("ALA", 43.2, -190.0), ("ALA", None, 76.9)])
    out = validate_frames({"incidents": frame}, RuleContext(EXTRACTED_AT, {"ALA": ALA}))
    counts = out["incidents"].rule_counts
    assert counts == {
        "incidents.lat_range": 1,
        "incidents.lon_range": 1,
        "incidents.lat_required": 1,
    }


def test_ingest_reads_the_boxes_from_places_yaml_and_counts_add_up(tmp_path: Path) -> None:
    points: list[tuple[str, float | None, float | None]] = [
        (code, CITY[code][0] + 0.01 * i, CITY[code][1] - 0.01 * i)
        for i, code in enumerate(REGION_CODES * 5)
    ]
    far = ("KAR", CITY["KAR"][1], CITY["KAR"][0])  # lat and lon swapped
    frame = _incidents([*points, far])
    frame = pl.concat([frame, frame.slice(0, 1)])  # and one exact duplicate
    delivery = write_delivery(tmp_path / "d", {"incidents": frame})
    report = ingest_delivery(delivery, tmp_path / "home").to_json_dict()
    got = report["tables"]["incidents"]
    assert got["rules"] == {RULE: 1}
    assert (got["rows_in"], got["accepted"], got["quarantined"], got["duplicates_dropped"]) == (
        22,
        20,
        1,
        1,
    )


def test_the_configured_boxes_hold_every_simulated_district_and_the_fixture() -> None:
    boxes = configured_region_bounds()
    assert boxes == load_places_config(ROOT / "configs" / "places.yaml").region_bounds
    assert set(boxes) == set(REGION_CODES)
    margin = 0.5  # degrees (over 35 km) left around every district centre
    for d in DISTRICTS:
        b = boxes[REGION_CODES[d.region]]
        assert b.min_lat + margin < d.lat < b.max_lat - margin, d.code
        assert b.min_lon + margin < d.lon < b.max_lon - margin, d.code
    incidents = pl.read_parquet(FIXTURE / "delivery-2025-12" / "incidents.parquet")
    out = validate_frames({"incidents": incidents}, RuleContext(EXTRACTED_AT))["incidents"]
    assert RULE not in out.rule_counts
    expected = json.loads((FIXTURE / "expected-ingest.json").read_text())["tables"]["incidents"]
    assert out.rule_counts == expected["rules"]


def test_boxes_are_typed(tmp_path: Path) -> None:
    bad = tmp_path / "places.yaml"
    bad.write_text("region_bounds:\n  AST: {min_lat: 52, max_lat: 50, min_lon: 70, max_lon: 73}\n")
    with pytest.raises(ConfigError, match="min_lat"):
        load_places_config(bad)
    bad.write_text("region_bounds:\n  AST: {min_lat: 50, max_lat: 52, min_lon: 70}\n")
    with pytest.raises(ConfigError, match="max_lon"):
        load_places_config(bad)
    none = tmp_path / "none.yaml"
    none.write_text("region_bounds: {}\n")
    assert load_places_config(none).region_bounds == {}
