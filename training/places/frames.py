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
from typing import Any

import polars as pl

from features.cells.config import PlacesConfig, load_places_config
from features.store.offline import OfflineStore
from training.places.model import HORIZON

KEYS = ("cell_id", "h3_resolution", "region", "district", "ring", "as_of", "horizon", "week_start")
Progress = Callable[[str, float | None], None]


def builder_available() -> bool:
    """Whether the features room's builder is in the code base (else `fallback_frame`)."""
    import importlib.util

    return all(
        importlib.util.find_spec(f"features.cells.{m}") is not None
        for m in ("build", "spec", "sources")
    )


@dataclass(frozen=True)
class CellInputs:
    """What building cell frames needs: the store's sources, the grid config and the spec."""

    sources: Any
    places: PlacesConfig
    spec: Any
    store: OfflineStore

    @property
    def builder(self) -> str:
        return "fallback" if self.sources is None else "features.cells.build"


def load_cell_inputs(
    home: Path, *, places_config: Path | None = None, features_config: Path | None = None
) -> CellInputs:
    """Read the grid config, the cell feature spec and the sources of the store at ``home``."""
    store = OfflineStore(home)
    places = load_places_config(places_config)
    if not builder_available():
        from training.places.fallback_frame import FallbackSpec

        return CellInputs(None, places, FallbackSpec(), store)
    import importlib

    cell_sources: Any = importlib.import_module("features.cells.sources")
    cell_spec: Any = importlib.import_module("features.cells.spec")
    spec = cell_spec.load_cell_spec(features_config)
    sources = cell_sources.load_sources(store)
    return CellInputs(sources, places, spec, store)


def build_frame(
    inputs: CellInputs,
    origins: Sequence[date],
    horizons: Iterable[int],
    *,
    with_label: bool,
    progress: Progress | None = None,
) -> pl.DataFrame:
    """One row per (cell, origin, horizon), only what was known at each origin."""
    if inputs.sources is None:
        from training.places.fallback_frame import build_fallback_frame

        return build_fallback_frame(
            inputs.store, origins, inputs.places, list(horizons), with_label=with_label
        )
    import importlib

    build: Any = importlib.import_module("features.cells.build")
    frame: pl.DataFrame = build.build_cell_frame(
        inputs.sources,
        list(origins),
        inputs.places,
        inputs.spec,
        horizons=list(horizons),
        with_label=with_label,
        progress=progress,
    )
    return frame


def model_inputs(spec: Any, frame: pl.DataFrame) -> list[str]:
    """The spec's model inputs in order, then ``horizon`` (the one model serves every week
    ahead); inputs the frame lacks are an error of the builder, named by `to_matrix`."""
    names = [str(n) for n in spec.model_inputs()]
    if HORIZON not in names:
        names.append(HORIZON)
    return names


def descriptions(spec: Any) -> dict[str, str]:
    """Feature -> the description a patrol planner reads (``horizon`` explained here)."""
    out = {str(k): str(v) for k, v in spec.descriptions().items()}
    out.setdefault(HORIZON, "how many weeks ahead the forecast week is (1 = next week)")
    return out
