"""Cells (issue 12, part 1): H3 assignment, the universe as of T, majority district, weekly
counts on the two clocks, the label, and the point-in-time rule (cutting the data at T changes
nothing as of T)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import h3
import polars as pl
import pytest

from features.cells import (
    PlacesConfig,
    assign_cells,
    cell_regions,
    cell_universe,
    forecast_week_start,
    label_counts,
    load_places_config,
    weekly_counts,
)
from features.store.offline import end_of_day
from riskcast.errors import ConfigError

T = date(2026, 6, 10)  # a Wednesday
BASE = (52.52, 13.40)
SCHEMA = {
    "incident_id": pl.Utf8,
    "occurred_at": pl.Datetime("us", "UTC"),
    "registered_at": pl.Datetime("us", "UTC"),
    "region": pl.Utf8,
    "district": pl.Utf8,
    "lat": pl.Float64,
    "lon": pl.Float64,
    "crime_type": pl.Utf8,
}


def ts(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def centre(lat: float, lon: float, res: int) -> tuple[float, float, str]:
    """A point at the centre of the cell holding (lat, lon), so no test sits on a border."""
    cell = h3.latlng_to_cell(lat, lon, res)
    clat, clon = h3.cell_to_latlng(cell)
    return clat, clon, cell


def frame(rows: list[dict[str, object]]) -> pl.LazyFrame:
    return pl.LazyFrame(rows, schema=SCHEMA)


def row(
    iid: str,
    point: tuple[float, float, str],
    registered: datetime,
    occurred: datetime | None = None,
    region: str = "R1",
    district: str | None = "D1",
    crime_type: str = "theft",
) -> dict[str, object]:
    return {
        "incident_id": iid,
        "occurred_at": occurred or registered,
        "registered_at": registered,
        "region": region,
        "district": district,
        "lat": point[0],
        "lon": point[1],
        "crime_type": crime_type,
    }


def scenario(res: int) -> tuple[pl.LazyFrame, dict[str, str]]:
    here = centre(*BASE, res)
    other = centre(BASE[0], BASE[1] + 0.2, res)
    old = centre(BASE[0] + 0.2, BASE[1], res)
    late = centre(BASE[0] - 0.2, BASE[1], res)
    rows = [
        row("a1", here, ts(T - timedelta(days=30)), district="D2"),
        row("a2", here, ts(T - timedelta(days=20)), district="D1"),
        row("a3", here, ts(T - timedelta(days=10)), district="D2"),
        row("a4", here, ts(T - timedelta(days=5)), region="R2", district="D9"),
        row("b1", other, ts(T - timedelta(days=365)), region="R1", district="D3"),
        # registered 3 years + 1 day before T: outside the lookback
        row("o1", old, ts(date(2023, 6, 9))),
        # registered after the end of T (occurred before): unknown at T
        row("l1", late, ts(T + timedelta(days=1), 0), occurred=ts(T - timedelta(days=2))),
    ]
    cells = {"here": here[2], "other": other[2], "old": old[2], "late": late[2]}
    return frame(rows), cells


@pytest.mark.parametrize("res", [8, 9])
def test_assign_cells_matches_h3(res: int) -> None:
    incidents, cells = scenario(res)
    got = assign_cells(incidents, res).collect()
    expected = [
        h3.latlng_to_cell(lat, lon, res) for lat, lon in zip(got["lat"], got["lon"], strict=True)
    ]
    assert got["cell_id"].to_list() == expected
    assert got["cell_id"][0] == cells["here"]
    assert all(h3.get_resolution(c) == res for c in got["cell_id"])


@pytest.mark.parametrize("res", [8, 9])
def test_universe_is_recent_cells_plus_ring(res: int) -> None:
    incidents, cells = scenario(res)
    config = PlacesConfig(h3_resolution=res)
    universe = cell_universe(assign_cells(incidents, res), T, config)
    expected = set(h3.grid_disk(cells["here"], 1)) | set(h3.grid_disk(cells["other"], 1))
    assert set(universe["cell_id"]) == expected
    assert universe.height == 14
    for gone in ("old", "late"):
        assert not set(h3.grid_disk(cells[gone], 1)) & set(universe["cell_id"])
    rings = dict(zip(universe["cell_id"], universe["ring"], strict=True))
    assert rings[cells["here"]] == 0 and rings[cells["other"]] == 0
    assert sum(r == 1 for r in rings.values()) == 12
    assert set(universe["h3_resolution"]) == {res}
    counts = dict(zip(universe["cell_id"], universe["incidents"], strict=True))
    assert counts[cells["here"]] == 4 and counts[cells["other"]] == 1
    # neighbours take the region and district of the cell with incidents next to them
    neighbour = next(iter(set(h3.grid_ring(cells["other"], 1))))
    got = universe.filter(pl.col("cell_id") == neighbour)
    assert got["region"][0] == "R1" and got["district"][0] == "D3" and got["incidents"][0] == 0


def test_universe_lookback_and_k_ring_follow_config() -> None:
    incidents, cells = scenario(8)
    located = assign_cells(incidents, 8)
    wide = cell_universe(located, T, PlacesConfig(universe_lookback_years=4, k_ring=0))
    assert set(wide["cell_id"]) == {cells["here"], cells["other"], cells["old"]}
    # a day after T the late incident is known and its cell joins
    later = cell_universe(located, T + timedelta(days=1), PlacesConfig(k_ring=0))
    assert cells["late"] in set(later["cell_id"])
    empty = cell_universe(located.filter(pl.lit(False)), T, PlacesConfig())
    assert empty.is_empty() and "region" in empty.columns


def test_majority_region_and_district() -> None:
    incidents, cells = scenario(8)
    located = assign_cells(incidents, 8)
    regions = cell_regions(located).collect()
    here = regions.filter(pl.col("cell_id") == cells["here"])
    # 3 of 4 incidents in R1; within R1, D2 twice against D1 once
    assert here.row(0) == (cells["here"], "R1", "D2", 4)
    # a tie goes to the smallest code, whatever the row order
    p = centre(*BASE, 8)
    tie = [row("x", p, ts(T), district="D7"), row("y", p, ts(T), district="D4")]
    for rows in (tie, tie[::-1]):
        got = cell_regions(assign_cells(frame(rows), 8)).collect()
        assert got.row(0) == (p[2], "R1", "D4", 2)
    tie_region = [row("x", p, ts(T), region="RB"), row("y", p, ts(T), region="RA")]
    assert cell_regions(assign_cells(frame(tie_region), 8)).collect()["region"][0] == "RA"
    none = [row("x", p, ts(T), district=None)]
    assert cell_regions(assign_cells(frame(none), 8)).collect()["district"][0] is None


def test_weekly_counts_two_clocks_differ() -> None:
    p = centre(*BASE, 8)
    monday = date(2026, 6, 1)
    rows = [
        # occurred the week before it was registered
        row("x", p, ts(monday + timedelta(days=1)), occurred=ts(monday - timedelta(days=3))),
        row("y", p, ts(monday + timedelta(days=2)), crime_type="assault"),
        # registered after T: in neither count
        row("z", p, ts(T + timedelta(days=1)), occurred=ts(monday)),
    ]
    located = assign_cells(frame(rows), 8)
    known = weekly_counts(located, T, "registered_at").collect()
    happened = weekly_counts(located, T, "occurred_at").collect()
    assert known.rows() == [(p[2], monday, 2)]
    assert happened.rows() == [(p[2], monday - timedelta(days=7), 1), (p[2], monday, 1)]
    typed = weekly_counts(located, T, "registered_at", by_crime_type=True).collect()
    assert typed.rows() == [(p[2], monday, "assault", 1), (p[2], monday, "theft", 1)]
    assert all(d.weekday() == 0 for d in happened["week_start"])
    with pytest.raises(ValueError, match="clock"):
        weekly_counts(located, T, "valid_from")  # type: ignore[arg-type]


def test_label_counts_registrations_in_the_forecast_week() -> None:
    assert forecast_week_start(T, 1) == date(2026, 6, 15)
    assert forecast_week_start(date(2026, 6, 15), 1) == date(2026, 6, 22)  # T a Monday
    assert forecast_week_start(T, 3) == date(2026, 6, 29)
    incidents, cells = scenario(8)
    p = centre(*BASE, 8)
    week = date(2026, 6, 15)
    extra = [
        row("w1", p, ts(week, 0), occurred=ts(T - timedelta(days=300))),  # old crime, new entry
        row("w2", p, datetime(2026, 6, 21, 23, 59, tzinfo=UTC)),
        row("w3", p, ts(week + timedelta(days=7), 0)),  # next week
        row("w4", p, ts(T + timedelta(days=2))),  # after T, before the forecast week
    ]
    located = assign_cells(pl.concat([incidents, frame(extra)]), 8)
    universe = cell_universe(located, T, PlacesConfig())
    labels = label_counts(located, universe, T, 1)
    assert labels.height == universe.height
    got = dict(zip(labels["cell_id"], labels["label"], strict=True))
    assert got[cells["here"]] == 2
    assert sum(got.values()) == 2
    assert set(labels["week_start"]) == {week}
    assert label_counts(located, universe, T, 2).filter(pl.col("cell_id") == p[2])["label"][0] == 1


def random_incidents(n: int, seed: int) -> pl.LazyFrame:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        lat = BASE[0] + rng.uniform(-0.02, 0.02)
        lon = BASE[1] + rng.uniform(-0.03, 0.03)
        registered = ts(T, 0) + timedelta(hours=rng.uniform(-24 * 400, 24 * 60))
        occurred = registered - timedelta(hours=rng.expovariate(1 / 200))
        rows.append(
            {
                "incident_id": f"i{i}",
                "occurred_at": occurred,
                "registered_at": registered,
                "region": rng.choice(["R1", "R2"]),
                "district": rng.choice(["D1", "D2", None]),
                "lat": lat,
                "lon": lon,
                "crime_type": rng.choice(["theft", "assault", "vehicle"]),
            }
        )
    return pl.LazyFrame(rows, schema=SCHEMA)


@pytest.mark.parametrize("res", [8, 9])
def test_point_in_time_cut_at_t_changes_nothing(res: int) -> None:
    full = assign_cells(random_incidents(600, seed=res), res)
    cut = full.filter(pl.col("registered_at") < end_of_day(T))
    assert cut.collect().height < full.collect().height  # the full data does hold later rows
    for clock in ("registered_at", "occurred_at"):
        for by_type in (False, True):
            a = weekly_counts(full, T, clock, by_crime_type=by_type).collect()
            b = weekly_counts(cut, T, clock, by_crime_type=by_type).collect()
            assert a.equals(b), (clock, by_type)
    config = PlacesConfig(h3_resolution=res)
    assert cell_universe(full, T, config).equals(cell_universe(cut, T, config))
    # and the later rows do change the counts as of a later day (the test can fail)
    later = T + timedelta(days=30)
    assert (
        not weekly_counts(full, later, "occurred_at")
        .collect()
        .equals(weekly_counts(cut, later, "occurred_at").collect())
    )


def test_places_config_file_and_refusals(tmp_path: Path) -> None:
    config = load_places_config(Path(__file__).resolve().parents[3] / "configs" / "places.yaml")
    assert config == PlacesConfig()
    assert (config.h3_resolution, config.universe_lookback_years, config.k_ring) == (8, 3, 1)
    assert config.week_start == "monday"
    nine = tmp_path / "nine.yaml"
    nine.write_text("h3_resolution: 9\n")
    assert load_places_config(nine).h3_resolution == 9
    for text, field in [("h3_resolution: 7\n", "h3_resolution"), ("k_rings: 1\n", "k_rings")]:
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(ConfigError, match=field):
            load_places_config(bad)


def test_kernel_weekly_is_the_same_in_any_chunking_and_drops_weeks_outside() -> None:
    import numpy as np

    from features.cells.geo import kernel_weekly

    rng = np.random.default_rng(3)
    centre = h3.latlng_to_cell(51.15, 71.45, 8)
    cells = sorted(h3.grid_disk(centre, 3))
    lat = 51.15 + rng.normal(0, 0.01, 200)
    lon = 71.45 + rng.normal(0, 0.015, 200)
    week = rng.integers(-2, 8, 200)
    whole = kernel_weekly(lat, lon, week, cells, 6, 0.5)
    pieces = kernel_weekly(lat, lon, week, cells, 6, 0.5, chunk=7)
    assert np.allclose(whole, pieces)
    inside = (week >= 0) & (week < 6)
    only = kernel_weekly(lat[inside], lon[inside], week[inside], cells, 6, 0.5)
    assert np.allclose(whole, only) and whole.sum() > 0
    # each week's mass comes from that week's points only
    first = kernel_weekly(lat[week == 0], lon[week == 0], week[week == 0], cells, 6, 0.5)
    assert np.allclose(whole[:, 0], first[:, 0]) and np.allclose(first[:, 1:], 0)
