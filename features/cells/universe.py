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

import polars as pl

from features.cells.cells import (
    UNIVERSE_SCHEMA,
    cell_regions,
    known_at,
    ring_pairs_of,
    universe_from,
    years_before,
)
from features.cells.config import PlacesConfig
from features.store.offline import end_of_day

UTC_TS = pl.Datetime("us", "UTC")
EMPTY = UNIVERSE_SCHEMA


def ring_pairs(cells: list[str], k: int) -> pl.DataFrame:
    """(source cell, cell, ring distance 0..k) for every distinct source cell."""
    return ring_pairs_of(sorted(set(cells)), k)


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
    return universe_from(observed, pairs, config)
