"""A seeded stand-in for `training.places.forecast.forecast_cells`, shared by the hotspot tests.

Until the training stage's forecast exists, the hotspot store, API and map page are tested on
this frame: the columns of docs/PLACES.md ("The forecast"), cells from `h3.latlng_to_cell`
around a few hotspots per region plus their k-ring, expected counts that fall off with the
distance to the hotspots, Poisson 80 % intervals, and three reasons per cell.
"""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from typing import Any

import h3
import numpy as np
import polars as pl
from scipy.stats import poisson

from serving.places.store import FORECAST_COLUMNS, check_forecast

CENTRES = {"AST": (51.128, 71.430), "SHY": (42.317, 69.596), "ALA": (43.238, 76.889)}
REASONS = (
    ("count_all_lag1", "incidents registered in the cell last week"),
    ("ewm_intensity", "recent incidents in and around the cell (decaying over weeks)"),
    ("ring1_count_4w", "incidents in the neighbouring cells over the last 4 weeks"),
    ("appeals_alcohol_lag2", "citizens' appeals about alcohol in the district, 2 weeks ago"),
    ("week_of_year", "time of year"),
)


def synthetic_forecast(
    seed: int = 7,
    *,
    regions: tuple[str, ...] = ("AST", "SHY"),
    as_of: date = date(2025, 6, 30),
    weeks: int = 8,
    hotspots: int = 3,
    resolution: int = 8,
    rings: int = 4,
    model_version: str = "3",
) -> pl.DataFrame:
    """One row per (cell, week): the forecast's columns, deterministic for a seed."""
    rng = np.random.default_rng(seed)
    first = as_of + timedelta(days=7 - as_of.weekday())  # the Monday after T
    rows: list[dict[str, Any]] = []
    for region in regions:
        lat0, lon0 = CENTRES[region]
        spots = [
            (lat0 + rng.normal(0, 0.02), lon0 + rng.normal(0, 0.03), rng.uniform(0.8, 3.0))
            for _ in range(hotspots)
        ]
        cells: set[str] = set()
        for lat, lon, _ in spots:
            cells.update(h3.grid_disk(h3.latlng_to_cell(lat, lon, resolution), rings))
        for cell in sorted(cells):
            lat, lon = h3.cell_to_latlng(cell)
            district = f"{region}-{'N' if lat >= lat0 else 'S'}{'E' if lon >= lon0 else 'W'}"
            base = sum(
                peak * math.exp(-(((lat - a) / 0.008) ** 2 + ((lon - b) / 0.012) ** 2))
                for a, b, peak in spots
            )
            for h in range(1, weeks + 1):
                mean = float(0.02 + base * (1 + 0.1 * math.sin(h)) * rng.uniform(0.9, 1.1))
                picked = rng.choice(len(REASONS), size=3, replace=False)
                reasons = [
                    {
                        "feature": REASONS[i][0],
                        "description": REASONS[i][1],
                        "value": float(round(rng.uniform(0, 5))),
                        "contribution": round(float(rng.normal(0.2, 0.3)), 3),
                    }
                    for i in picked
                ]
                rows.append(
                    {
                        "cell_id": cell,
                        "h3_resolution": resolution,
                        "region": region,
                        "district": district,
                        "lat": lat,
                        "lon": lon,
                        "area_km2": h3.cell_area(cell, unit="km^2"),
                        "as_of": as_of,
                        "horizon": h,
                        "week_start": first + timedelta(weeks=h - 1),
                        "expected_count": mean,
                        "lower_80": float(poisson.ppf(0.1, mean)),
                        "upper_80": float(poisson.ppf(0.9, mean)),
                        "reasons": json.dumps(reasons),
                        "model_name": "street-crime",
                        "model_version": model_version,
                    }
                )
    return pl.DataFrame(rows, schema=FORECAST_COLUMNS)


def test_the_stand_in_is_a_valid_seeded_forecast() -> None:
    a, b = synthetic_forecast(11), synthetic_forecast(11)
    assert a.equals(b)
    assert not a.equals(synthetic_forecast(12))
    checked = check_forecast(a)
    assert checked.height == a.height
    assert set(a["region"]) == {"AST", "SHY"} and a["horizon"].max() == 8
    per_week = a.group_by("week_start").len()
    assert per_week["len"].n_unique() == 1  # every cell in every week
    assert (a["week_start"].dt.weekday() == 1).all()
