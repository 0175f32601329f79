"""Incidents to H3 cells, the cell universe as of T, and weekly counts on the two clocks.

Everything here is a pure function of Polars frames holding the contract's ``incidents`` columns
(``incident_id``, ``occurred_at``, ``registered_at``, ``region``, ``district``, ``lat``, ``lon``,
``crime_type``), with timestamps in UTC. The two-clock rule of the contract holds throughout:
as of ``T`` (the end of day ``T`` in UTC) only incidents *registered* by then are used, whichever
clock a count is on; only the label looks past ``T``, and it counts registrations too.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Final, Literal

import h3
import polars as pl

from features.cells.config import PlacesConfig
from features.store.offline import end_of_day

Clock = Literal["registered_at", "occurred_at"]
CLOCKS: Final[tuple[Clock, ...]] = ("registered_at", "occurred_at")
UTC_TS = pl.Datetime("us", "UTC")
UNIVERSE_SCHEMA: Final[dict[str, pl.DataType]] = {
    "cell_id": pl.Utf8(),
    "h3_resolution": pl.Int32(),
    "region": pl.Utf8(),
    "district": pl.Utf8(),
    "ring": pl.Int32(),
    "incidents": pl.Int64(),
}


def _cutoff(as_of: date) -> pl.Expr:
    return pl.lit(end_of_day(as_of), dtype=UTC_TS)


def known_at(incidents: pl.LazyFrame, as_of: date) -> pl.LazyFrame:
    """The incidents the register knew at the end of ``as_of``: ``registered_at`` before
    ``T+1 00:00Z``. Occurrence time plays no part: an old crime registered late is unknown
    until its registration, which is what keeps features honest when registrations lag."""
    return incidents.filter(pl.col("registered_at") < _cutoff(as_of))


def _cells(lat: pl.Series, lon: pl.Series, resolution: int) -> pl.Series:
    return pl.Series(
        [h3.latlng_to_cell(a, o, resolution) for a, o in zip(lat, lon, strict=True)],
        dtype=pl.Utf8,
    )


def assign_cells(incidents: pl.LazyFrame, resolution: int) -> pl.LazyFrame:
    """``incidents`` with ``cell_id``: the H3 cell (hex string) holding each incident's point.

    The cell id is the string form so it reads the same in a forecast file, a URL and the map.
    """
    return incidents.with_columns(
        pl.struct("lat", "lon")
        .map_batches(
            lambda s: _cells(s.struct.field("lat"), s.struct.field("lon"), resolution),
            return_dtype=pl.Utf8,
        )
        .alias("cell_id")
    )


def years_before(day: date, years: int) -> date:
    """The same calendar day ``years`` earlier; 29 February falls back to 28 February."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _top(frame: pl.LazyFrame, key: str, weight: str, value: str) -> pl.LazyFrame:
    """Per ``key`` the ``value`` with the largest ``weight``; ties go to the smallest value, so
    the choice never depends on row order."""
    return (
        frame.sort([key, weight, value], descending=[False, True, False], nulls_last=True)
        .group_by(key, maintain_order=True)
        .agg(pl.col(value).first())
    )


def cell_regions(cell_incidents: pl.LazyFrame) -> pl.LazyFrame:
    """One row per cell: the region most of its incidents carry, then the district most of the
    incidents *of that region* carry (null if none names one), and the number of incidents.

    Codes are free strings, so a cell on a boundary may see two; the majority decides and a tie
    goes to the smallest code, so the same incidents always give the same answer."""
    per_region = cell_incidents.group_by("cell_id", "region").agg(pl.len().alias("_n"))
    region = _top(per_region, "cell_id", "_n", "region")
    per_district = (
        cell_incidents.join(region, on=["cell_id", "region"], how="semi")
        .filter(pl.col("district").is_not_null())
        .group_by("cell_id", "district")
        .agg(pl.len().alias("_n"))
    )
    district = _top(per_district, "cell_id", "_n", "district")
    totals = cell_incidents.group_by("cell_id").agg(pl.len().cast(pl.Int64).alias("incidents"))
    return (
        region.join(district, on="cell_id", how="left")
        .join(totals, on="cell_id", how="left")
        .select("cell_id", "region", "district", "incidents")
        .sort("cell_id")
    )


def ring_pairs_of(cells: list[str], k: int) -> pl.DataFrame:
    """(source cell, cell, ring distance) for every cell within ``k`` rings of each source."""
    sources: list[str] = []
    targets: list[str] = []
    rings: list[int] = []
    for cell in cells:
        for distance in range(k + 1):
            for neighbour in h3.grid_ring(cell, distance):
                sources.append(cell)
                targets.append(neighbour)
                rings.append(distance)
    return pl.DataFrame(
        {"_source": sources, "cell_id": targets, "ring": rings},
        schema={"_source": pl.Utf8, "cell_id": pl.Utf8, "ring": pl.Int32},
    )


def cell_universe(cell_incidents: pl.LazyFrame, as_of: date, config: PlacesConfig) -> pl.DataFrame:
    """The cells forecast as of ``T``: every cell with an incident registered in the lookback
    years before ``T`` (and by the end of ``T``), plus its neighbours up to ``config.k_ring``.

    Without the neighbours a cell that has been quiet could never be forecast, though
    near-repeat risk spills into it. ``ring`` is 0 for a cell with incidents, else the distance
    to the nearest one. A neighbour takes its region/district from the nearest cells with
    incidents, weighted by their counts (ties to the smallest code). ``cell_incidents`` comes
    from `assign_cells` at ``config.h3_resolution``."""
    start = _cutoff(years_before(as_of, config.universe_lookback_years))
    recent = known_at(cell_incidents, as_of).filter(pl.col("registered_at") >= start)
    observed = cell_regions(recent).collect()
    if observed.is_empty():
        return pl.DataFrame(schema=UNIVERSE_SCHEMA)
    return universe_from(
        observed, ring_pairs_of(observed["cell_id"].to_list(), config.k_ring), config
    )


def universe_from(
    observed: pl.DataFrame, pairs_frame: pl.DataFrame, config: PlacesConfig
) -> pl.DataFrame:
    """The universe from the observed cells (`cell_regions`) and their ring pairs
    (``_source``, ``cell_id``, ``ring``): each cell's nearest ring, and the region/district
    of the nearest observed cells weighted by their counts. Shared by `cell_universe` and
    `features.cells.universe.universe_at` (rings computed once for many origins)."""
    pairs = pairs_frame.lazy()
    sources = observed.lazy().rename({"cell_id": "_source", "incidents": "_n"})
    nearest = (
        pairs.join(sources, on="_source")
        .with_columns(pl.col("ring").min().over("cell_id").alias("_min"))
        .filter(pl.col("ring") == pl.col("_min"))
    )
    region = _top(
        nearest.group_by("cell_id", "region").agg(pl.col("_n").sum()), "cell_id", "_n", "region"
    )
    district = _top(
        nearest.join(region, on=["cell_id", "region"], how="semi")
        .filter(pl.col("district").is_not_null())
        .group_by("cell_id", "district")
        .agg(pl.col("_n").sum()),
        "cell_id",
        "_n",
        "district",
    )
    ring = nearest.group_by("cell_id").agg(pl.col("ring").min())
    own = observed.lazy().select("cell_id", "incidents")
    return (
        ring.join(region, on="cell_id", how="left")
        .join(district, on="cell_id", how="left")
        .join(own, on="cell_id", how="left")
        .select(
            "cell_id",
            pl.lit(config.h3_resolution, dtype=pl.Int32).alias("h3_resolution"),
            "region",
            "district",
            "ring",
            pl.col("incidents").fill_null(0),
        )
        .sort("region", "cell_id")
        .collect()
    )


def weekly_counts(
    cell_incidents: pl.LazyFrame, as_of: date, clock: Clock, *, by_crime_type: bool = False
) -> pl.LazyFrame:
    """Incidents per (cell, week[, crime type]) as known at the end of ``T``, weeks by ``clock``.

    Features use the ``registered_at`` clock (what a planner could have seen that week); the
    ``occurred_at`` clock is kept apart for analysis and the simulator's truth, never mixed in.
    Both are restricted to incidents registered by ``T``, so a late registration shows up in
    its occurrence week only from the day it was registered. Weeks start on Monday (UTC); only
    weeks with at least one incident appear (zero-filling is the caller's choice of cells)."""
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {', '.join(CLOCKS)}, not {clock!r}")
    keys = ["cell_id", "week_start", *(["crime_type"] if by_crime_type else [])]
    return (
        known_at(cell_incidents, as_of)
        .with_columns(pl.col(clock).dt.date().dt.truncate("1w").alias("week_start"))
        .group_by(keys)
        .agg(pl.len().cast(pl.Int64).alias("count"))
        .sort(keys)
    )


def forecast_week_start(as_of: date, horizon: int) -> date:
    """The Monday that starts forecast week ``horizon`` (1 = the first whole week after ``T``).

    The first week starts on the first Monday strictly after ``T``, so it never overlaps the
    day ``T`` whose registrations are already features."""
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1 week, not {horizon}")
    next_monday = as_of + timedelta(days=7 - as_of.weekday())
    return next_monday + timedelta(weeks=horizon - 1)


def label_counts(
    cell_incidents: pl.LazyFrame, universe: pl.DataFrame, as_of: date, horizon: int
) -> pl.DataFrame:
    """The label: incidents *registered* in forecast week ``horizon`` after ``T``, per cell of
    the universe (zero where none). Occurrence time does not matter, as for persons: what is
    forecast is what the register will learn that week. Incidents outside the universe are not
    counted (no cell is forecast for them)."""
    week = forecast_week_start(as_of, horizon)
    start = end_of_day(week - timedelta(days=1))
    end = end_of_day(week + timedelta(days=6))
    hits = (
        cell_incidents.filter(
            (pl.col("registered_at") >= pl.lit(start, dtype=UTC_TS))
            & (pl.col("registered_at") < pl.lit(end, dtype=UTC_TS))
        )
        .group_by("cell_id")
        .agg(pl.len().cast(pl.Int64).alias("label"))
    )
    return (
        universe.lazy()
        .select("cell_id")
        .join(hits, on="cell_id", how="left")
        .select(
            "cell_id",
            pl.lit(week, dtype=pl.Date).alias("week_start"),
            pl.lit(horizon, dtype=pl.Int32).alias("horizon"),
            pl.col("label").fill_null(0),
        )
        .sort("cell_id")
        .collect()
    )
