"""The edge to the features room: the cell feature spec and the point-in-time cell frame.

Everything the places path needs from `features.cells` goes through here (`build_cell_frame`,
the spec's model inputs and their descriptions, reading the sources from the offline store), so
an interface change there is one edit here. The frame's columns are those of docs/PLACES.md
("The cell frame").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from features.cells.build import build_cell_frame
from features.cells.config import PlacesConfig, load_places_config
from features.cells.sources import CellSources, load_sources
from features.cells.spec import CellSpec, load_cell_spec
from features.store.offline import OfflineStore
from training.places.model import HORIZON

KEYS = ("cell_id", "h3_resolution", "region", "district", "ring", "as_of", "horizon", "week_start")
Progress = Callable[[str, float | None], None]


@dataclass(frozen=True)
class CellInputs:
    """What building cell frames needs: the store's sources, the grid config and the spec."""

    sources: CellSources
    places: PlacesConfig
    spec: CellSpec
    store: OfflineStore

    @property
    def builder(self) -> str:
        return "features.cells.build"


def load_cell_inputs(
    home: Path, *, places_config: Path | None = None, features_config: Path | None = None
) -> CellInputs:
    """Read the grid config, the cell feature spec and the sources of the store at ``home``."""
    store = OfflineStore(home)
    places = load_places_config(places_config)
    return CellInputs(load_sources(store), places, load_cell_spec(features_config), store)


def build_frame(
    inputs: CellInputs,
    origins: Sequence[date],
    horizons: Iterable[int],
    *,
    with_label: bool,
    progress: Progress | None = None,
) -> pl.DataFrame:
    """One row per (cell, origin, horizon), only what was known at each origin."""
    return build_cell_frame(
        inputs.sources,
        list(origins),
        inputs.places,
        inputs.spec,
        horizons=list(horizons),
        with_label=with_label,
        progress=progress,
    )


def model_inputs(spec: CellSpec, frame: pl.DataFrame) -> list[str]:
    """The spec's model inputs in order, then ``horizon`` (the one model serves every week
    ahead); inputs the frame lacks are an error of the builder, named by `to_matrix`."""
    names = [str(n) for n in spec.model_inputs()]
    if HORIZON not in names:
        names.append(HORIZON)
    return names


def descriptions(spec: CellSpec) -> dict[str, str]:
    """Feature -> the description a patrol planner reads (``horizon`` explained here)."""
    out = {str(k): str(v) for k, v in spec.descriptions().items()}
    out.setdefault(HORIZON, "how many weeks ahead the forecast week is (1 = next week)")
    return out
