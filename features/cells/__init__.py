"""Map cells (H3 hexagons) for place-based forecasting: the cell universe, weekly counts, the cell
feature spec and the point-in-time cell frame.

Pure Polars functions over the contract's tables; reading the store is `sources.load_sources`'
job only, so every rule here (two clocks, nothing known after T) can be tested on hand-made frames.
"""

from features.cells.build import anchor_week, build_cell_frame
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
from features.cells.sources import CellSources, load_sources
from features.cells.spec import CellSpec, load_cell_spec

__all__ = [
    "CLOCKS",
    "CellSources",
    "CellSpec",
    "PlacesConfig",
    "anchor_week",
    "assign_cells",
    "build_cell_frame",
    "cell_regions",
    "cell_universe",
    "forecast_week_start",
    "known_at",
    "label_counts",
    "load_cell_spec",
    "load_places_config",
    "load_sources",
    "weekly_counts",
]
