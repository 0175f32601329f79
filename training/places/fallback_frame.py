"""A minimal point-in-time cell frame, used only while `features.cells.build` is absent.

The features room owns the cell frame (`features.cells.build.build_cell_frame`, the spec in
``configs/cell_features.yaml``). Until that builder is in the code base, `training.places
.frames` falls back to this one so the places path can be trained and tested end to end; a
run records which builder it used (tag ``riskcast.cell_frame``). It has the documented key
columns and a handful of count features computed from the incidents known at ``T`` only
(registered by the end of ``T``), and the same label rule (registrations in the forecast week,
null while that week has not ended by the last extraction).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import polars as pl

from features.cells.cells import assign_cells, cell_universe, forecast_week_start, known_at
from features.cells.config import PlacesConfig
from features.store.offline import OfflineStore, end_of_day

DESCRIPTIONS: dict[str, str] = {
    "count_w1": "incidents registered in the cell in the last week before the forecast date",
    "count_w2": "incidents registered in the cell two weeks before the forecast date",
    "count_4w": "incidents registered in the cell in the last 4 weeks",
    "count_13w": "incidents registered in the cell in the last 13 weeks",
    "count_52w": "incidents registered in the cell in the last 52 weeks",
    "count_156w": "incidents registered in the cell in the last 3 years (its long-run level)",
    "recent_intensity": "recent incidents in the cell, each weighted down with a 2-week half-life",
    "ring1_count_4w": "incidents in the 6 neighbouring cells in the last 4 weeks",
    "ring1_count_52w": "incidents in the 6 neighbouring cells in the last 52 weeks",
    "ring1_count_156w": "incidents in the 6 neighbouring cells in the last 3 years",
    "ring1_recent_intensity": "recent incidents in the neighbouring cells, 2-week half-life",
    "intensity_8w": "incidents in the cell, each weighted down with an 8-week half-life",
    "ring1_intensity_8w": "incidents in the neighbouring cells, 8-week half-life",
    "ring2_count_52w": "incidents in the 12 cells of the second ring in the last 52 weeks",
    "district_count_4w": "incidents registered in the cell's district in the last 4 weeks",
    "district_count_52w": "incidents registered in the cell's district in the last 52 weeks",
    "district_appeals_violence_4w": "appeals on violence or bullying in the district, 4 weeks",
    "district_appeals_drugs_4w": "citizens' appeals about drugs in the district, last 4 weeks",
    "district_appeals_disorder_4w": "appeals about alcohol or noise in the district, last 4 weeks",
    "district_appeals_52w": "citizens' appeals of these themes in the district, last 52 weeks",
    "ring": "0 = the cell had incidents in the last 3 years, 1 = a neighbour of such a cell",
    "week_of_year": "the forecast week's week of the year (seasonality)",
}
FEATURES = list(DESCRIPTIONS)


class FallbackSpec:
    """The stand-in spec: model inputs and their descriptions."""

    def model_inputs(self) -> list[str]:
        return list(FEATURES)

    def descriptions(self) -> dict[str, str]:
        return dict(DESCRIPTIONS)

    def digest(self) -> str:
        return "fallback-cell-frame-v1"


_THEMES = {
    "violence": ("violence", "bullying"),
    "drugs": ("drugs",),
    "disorder": ("alcohol", "noise"),
}


def _district_features(
    cell_incidents: pl.DataFrame, appeals: pl.DataFrame | None, as_of: date
) -> pl.DataFrame:
    """Per district: incidents and themed appeals known at ``T`` (district trends lead cells)."""
    cutoff = end_of_day(as_of)
    ts = pl.Datetime("us", "UTC")
    days = (pl.lit(cutoff, dtype=ts) - pl.col("registered_at")).dt.total_seconds() / 86400.0
    inc = (
        known_at(cell_incidents.lazy(), as_of)
        .filter(pl.col("district").is_not_null())
        .with_columns(days.alias("_d"))
        .filter(pl.col("_d") < 364)
        .group_by("district")
        .agg(
            (pl.col("_d") < 28).sum().cast(pl.Float64).alias("district_count_4w"),
            pl.len().cast(pl.Float64).alias("district_count_52w"),
        )
        .collect()
    )
    if appeals is None or appeals.is_empty():
        return inc
    adays = (pl.lit(cutoff, dtype=ts) - pl.col("submitted_at")).dt.total_seconds() / 86400.0
    known = appeals.filter(pl.col("submitted_at") < pl.lit(cutoff, dtype=ts)).with_columns(
        adays.alias("_d")
    )
    themed = [c for cats in _THEMES.values() for c in cats]
    agg = (
        known.filter(pl.col("_d") < 364)
        .group_by("district")
        .agg(
            *[
                ((pl.col("_d") < 28) & pl.col("category").is_in(list(cats)))
                .sum()
                .cast(pl.Float64)
                .alias(f"district_appeals_{name}_4w")
                for name, cats in _THEMES.items()
            ],
            pl.col("category").is_in(themed).sum().cast(pl.Float64).alias("district_appeals_52w"),
        )
    )
    return inc.join(agg, on="district", how="full", coalesce=True)


def _features_at(cell_incidents: pl.DataFrame, universe: pl.DataFrame, as_of: date) -> pl.DataFrame:
    cutoff = end_of_day(as_of)
    known = known_at(cell_incidents.lazy(), as_of).filter(
        pl.col("registered_at")
        >= pl.lit(cutoff - timedelta(weeks=156), dtype=pl.Datetime("us", "UTC"))
    )
    days = (
        pl.lit(cutoff, dtype=pl.Datetime("us", "UTC")) - pl.col("registered_at")
    ).dt.total_seconds() / 86400.0
    per_cell = (
        known.with_columns(days.alias("_d"))
        .group_by("cell_id")
        .agg(
            (pl.col("_d") < 7).sum().alias("count_w1"),
            ((pl.col("_d") >= 7) & (pl.col("_d") < 14)).sum().alias("count_w2"),
            (pl.col("_d") < 28).sum().alias("count_4w"),
            (pl.col("_d") < 91).sum().alias("count_13w"),
            (pl.col("_d") < 364).sum().alias("count_52w"),
            pl.len().alias("count_156w"),
            (-pl.col("_d") * (0.6931 / 14)).exp().sum().alias("recent_intensity"),
            (-pl.col("_d") * (0.6931 / 56)).exp().sum().alias("intensity_8w"),
        )
        .collect()
    )
    import h3

    pairs = pl.DataFrame(
        [(c, n) for c in universe["cell_id"].to_list() for n in h3.grid_ring(c, 1)],
        schema={"cell_id": pl.Utf8, "neighbour": pl.Utf8},
        orient="row",
    )
    ring = (
        pairs.join(per_cell.rename({"cell_id": "neighbour"}), on="neighbour")
        .group_by("cell_id")
        .agg(
            pl.col("count_4w").sum().alias("ring1_count_4w"),
            pl.col("count_52w").sum().alias("ring1_count_52w"),
            pl.col("count_156w").sum().alias("ring1_count_156w"),
            pl.col("recent_intensity").sum().alias("ring1_recent_intensity"),
            pl.col("intensity_8w").sum().alias("ring1_intensity_8w"),
        )
    )
    pairs2 = pl.DataFrame(
        [(c, n) for c in universe["cell_id"].to_list() for n in h3.grid_ring(c, 2)],
        schema={"cell_id": pl.Utf8, "neighbour": pl.Utf8},
        orient="row",
    )
    ring2 = (
        pairs2.join(per_cell.rename({"cell_id": "neighbour"}), on="neighbour")
        .group_by("cell_id")
        .agg(pl.col("count_52w").sum().alias("ring2_count_52w"))
    )
    return (
        universe.select("cell_id", "h3_resolution", "region", "district", "ring")
        .join(per_cell, on="cell_id", how="left")
        .join(ring, on="cell_id", how="left")
        .join(ring2, on="cell_id", how="left")
        .fill_null(0)
        .with_columns(pl.lit(as_of, dtype=pl.Date).alias("as_of"))
    )


def build_fallback_frame(
    store: OfflineStore,
    origins: Sequence[date],
    places: PlacesConfig,
    horizons: Sequence[int],
    *,
    with_label: bool,
) -> pl.DataFrame:
    """One row per (cell, origin, horizon) with `FEATURES` and ``label``."""
    incidents = assign_cells(store.scan("incidents"), places.h3_resolution).collect()
    from features.contract import TABLES
    from features.store.offline import visible_as_of

    last = store.state().last_delivery
    last_day = last.extracted_at.date() if last is not None else max(origins)
    latest = incidents.filter(visible_as_of(TABLES["incidents"], last_day))
    appeals_all = store.scan("appeals").collect() if store.has_table("appeals") else None
    parts = []
    for as_of in origins:
        now = incidents.filter(visible_as_of(TABLES["incidents"], as_of))
        universe = cell_universe(now.lazy(), as_of, places)
        if universe.is_empty():
            continue
        appeals = (
            None
            if appeals_all is None
            else appeals_all.filter(visible_as_of(TABLES["appeals"], as_of))
        )
        base = _features_at(now, universe, as_of).join(
            _district_features(now, appeals, as_of), on="district", how="left"
        )
        for h in horizons:
            week = forecast_week_start(as_of, h)
            row = base.with_columns(
                pl.lit(h, dtype=pl.Int32).alias("horizon"),
                pl.lit(week, dtype=pl.Date).alias("week_start"),
                pl.lit(week.isocalendar()[1], dtype=pl.Int32).alias("week_of_year"),
            )
            if with_label:
                ended = week + timedelta(days=7) <= last_day
                if ended:
                    start = end_of_day(week - timedelta(days=1))
                    end = end_of_day(week + timedelta(days=6))
                    hits = (
                        latest.filter(
                            (
                                pl.col("registered_at")
                                >= pl.lit(start, dtype=pl.Datetime("us", "UTC"))
                            )
                            & (
                                pl.col("registered_at")
                                < pl.lit(end, dtype=pl.Datetime("us", "UTC"))
                            )
                        )
                        .group_by("cell_id")
                        .agg(pl.len().cast(pl.Int64).alias("label"))
                    )
                    row = row.join(hits, on="cell_id", how="left").with_columns(
                        pl.col("label").fill_null(0)
                    )
                else:
                    row = row.with_columns(pl.lit(None, dtype=pl.Int64).alias("label"))
            parts.append(row)
    if not parts:
        return pl.DataFrame()
    frame = pl.concat(parts, how="diagonal_relaxed")
    keys = [
        "cell_id",
        "h3_resolution",
        "region",
        "district",
        "ring",
        "as_of",
        "horizon",
        "week_start",
    ]
    rest = [c for c in frame.columns if c not in keys]
    missing = [f for f in FEATURES if f not in frame.columns]
    frame = frame.with_columns(pl.lit(0.0).alias(f) for f in missing)
    return frame.select(*keys, *rest, *missing).with_columns(
        pl.col(FEATURES).cast(pl.Float64).fill_null(0.0)
    )
