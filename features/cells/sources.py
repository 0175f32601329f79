"""Reading what the cell frame needs from the offline store (the only I/O of the cell features).

Every version of every row is read, with the store's version columns (``_valid_from``,
``_valid_to``): the builder decides per as-of date which version was visible
(`features.store.offline.visible_as_of`), so one read serves every origin. A table the store has
never received is None; the features built on it are then 0 (documented in the spec).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from features.cells.cells import assign_cells
from features.store.offline import VALID_FROM, VALID_TO, OfflineStore

_VERSIONS = [VALID_FROM, VALID_TO]
_COLUMNS: dict[str, list[str]] = {
    "incidents": ["incident_id", "registered_at", "region", "district", "lat", "lon", "crime_type"],
    "appeals": ["appeal_id", "submitted_at", "district", "category"],
    "admin_offences": ["record_id", "person_id", "registered_at", "category"],
    "releases": ["person_id", "released_at", "sentence", "recorded_at"],
    "persons": ["person_id", "district"],
}


@dataclass
class CellSources:
    """All versions of the tables the cell features read; optional tables may be None.

    ``incidents`` carries coordinates; `cell_incidents` adds the H3 cell at a resolution once
    and keeps it (the forecast may ask for the resolution the model was trained at)."""

    incidents: pl.DataFrame
    appeals: pl.DataFrame | None = None
    admin_offences: pl.DataFrame | None = None
    releases: pl.DataFrame | None = None
    persons: pl.DataFrame | None = None
    last_extracted: datetime | None = None  # the store's last extraction
    _cells: dict[int, pl.DataFrame] = field(default_factory=dict, repr=False)

    def cell_incidents(self, resolution: int) -> pl.DataFrame:
        if resolution not in self._cells:
            self._cells[resolution] = assign_cells(self.incidents.lazy(), resolution).collect()
        return self._cells[resolution]


def _read(store: OfflineStore, name: str) -> pl.DataFrame | None:
    if not store.has_table(name):
        return None
    return store.scan(name).select(*_COLUMNS[name], *_VERSIONS).collect()


def load_sources(store: OfflineStore) -> CellSources:
    """The incidents (required: without them there are no cells) and the optional tables."""
    incidents = _read(store, "incidents")
    if incidents is None:
        schema: dict[str, pl.DataType] = {c: pl.String() for c in _COLUMNS["incidents"]}
        schema.update({"lat": pl.Float64(), "lon": pl.Float64()})
        schema.update({"registered_at": pl.Datetime("us", "UTC")})
        schema.update({c: pl.Datetime("us", "UTC") for c in _VERSIONS})
        incidents = pl.DataFrame(schema=schema)
    last = store.state().last_delivery
    return CellSources(
        incidents=incidents,
        appeals=_read(store, "appeals"),
        admin_offences=_read(store, "admin_offences"),
        releases=_read(store, "releases"),
        persons=_read(store, "persons"),
        last_extracted=None if last is None else last.extracted_at,
    )
