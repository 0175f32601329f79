"""The cell universe as of T (`features.cells.cells.cell_universe`) for many origins at once.

`cell_universe` finds the k-ring neighbours of the observed cells with the H3 library, cell by
cell, on every call; over 78 training origins at 1M persons that was most of the frame's build
time. Here the rings of every cell that ever had an incident are computed once (`ring_pairs`)
and each origin selects those of its observed cells; the rule (majority region/district,
nearest cells for neighbours, ties to the smallest code) is the same, and
`tests/unit/features/test_cell_build.py` checks the two agree.
"""

from __future__ import annotations

from datetime import date

import h3
import polars as pl

from features.cells.cells import _top, cell_regions, known_at, years_before
from features.cells.config import PlacesConfig
from features.store.offline import end_of_day

UTC_TS = pl.Datetime("us", "UTC")
EMPTY = {
    "cell_id": pl.Utf8,
    "h3_resolution": pl.Int32,
    "region": pl.Utf8,
    "district": pl.Utf8,
    "ring": pl.Int32,
    "incidents": pl.Int64,
}


def ring_pairs(cells: list[str], k: int) -> pl.DataFrame:
    """(source cell, cell, ring distance 0..k) for every source cell."""
    sources: list[str] = []
    targets: list[str] = []
    rings: list[int] = []
    for cell in sorted(set(cells)):
        for distance in range(k + 1):
            for neighbour in h3.grid_ring(cell, distance):
                sources.append(cell)
                targets.append(neighbour)
                rings.append(distance)
    return pl.DataFrame(
        {"_source": sources, "cell_id": targets, "ring": rings},
        schema={"_source": pl.Utf8, "cell_id": pl.Utf8, "ring": pl.Int32},
    )


def universe_at(
    cell_incidents: pl.LazyFrame, as_of: date, config: PlacesConfig, pairs: pl.DataFrame
) -> pl.DataFrame:
    """`cell_universe(cell_incidents, as_of, config)`, with the rings taken from ``pairs``
    (`ring_pairs` of every cell in ``cell_incidents`` at ``config.k_ring``)."""
    start = pl.lit(end_of_day(years_before(as_of, config.universe_lookback_years)), dtype=UTC_TS)
    recent = known_at(cell_incidents, as_of).filter(pl.col("registered_at") >= start)
    observed = cell_regions(recent).collect()
    if observed.is_empty():
        return pl.DataFrame(schema=EMPTY)
    sources = observed.lazy().rename({"cell_id": "_source", "incidents": "_n"})
    nearest = (
        pairs.lazy()
        .join(sources, on="_source")
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
