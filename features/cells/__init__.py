"""Map cells (H3 hexagons) for place-based forecasting: the cell universe and weekly counts.

Pure Polars functions over the contract's ``incidents`` table; reading the store is the caller's
job, so every rule here (two clocks, nothing known after T) can be tested on hand-made frames.
"""

from features.cells.cells import (
    CLOCKS,
    assign_cells,
    cell_regions,
    cell_universe,
    forecast_week_start,
    known_at,
    label_counts,
    weekly_counts,
)
from features.cells.config import PlacesConfig, load_places_config

__all__ = [
    "CLOCKS",
    "PlacesConfig",
    "assign_cells",
    "cell_regions",
    "cell_universe",
    "forecast_week_start",
    "known_at",
    "label_counts",
    "load_places_config",
    "weekly_counts",
]
