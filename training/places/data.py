"""Reading what a places run needs besides the cell frame: the incidents the baselines see as
of each origin, the store's time span, and the simulator's true intensity (through a truth
manifest, never by importing the simulator).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from features.cells.cells import assign_cells
from features.cells.geo import cell_geometry, ring1_pairs
from features.contract import TABLES
from features.store.offline import OfflineStore, visible_as_of
from riskcast.digest import sha256_file
from riskcast.errors import InputError, NotFoundError
from riskcast.truth import manifest_file, read_truth_manifest
from training.places.baselines import OriginData

INTENSITY_FILE = "places_intensity.parquet"
INCIDENT_COLUMNS = ("cell_id", "lat", "lon", "registered_at")


@dataclass(frozen=True)
class StoreSpan:
    first_day: date
    last_day: date
    extract_ids: frozenset[str]


def store_span(store: OfflineStore) -> StoreSpan:
    """First incident registration and last extraction of the store; an empty store is an
    `InputError` saying what to do."""
    state = store.state()
    last = state.last_delivery
    if last is None or "incidents" not in state.tables:
        raise InputError(
            f"no incidents in the store at {store.root}: ingest a delivery first (riskcast ingest)"
        )
    first = store.scan("incidents").select(pl.col("registered_at").min()).collect().item()
    if first is None:
        raise InputError(f"the store at {store.root} holds no incident rows")
    return StoreSpan(
        first.date(), last.extracted_at.date(), frozenset(d.extract_id for d in state.deliveries)
    )


def incident_versions(store: OfflineStore, resolution: int) -> pl.DataFrame:
    """Every stored version of every incident with its H3 cell (versions are kept so that
    `origin_data` can show each origin exactly what was known then)."""
    return assign_cells(store.scan("incidents"), resolution).collect()


def origin_data(
    versions: pl.DataFrame, universe: pl.DataFrame, as_of: date, neighbours: pl.DataFrame
) -> OriginData:
    """`OriginData` for ``as_of``: the incident versions visible then, the universe's cells
    with their geometry (``universe``: ``cell_id``, ``lat``, ``lon``, ``area_km2``)."""
    known = versions.filter(visible_as_of(TABLES["incidents"], as_of)).select(INCIDENT_COLUMNS)
    return OriginData(as_of, universe, known, neighbours)


def origins_from_frame(
    frame: pl.DataFrame, versions: pl.DataFrame, origins: Sequence[date]
) -> dict[date, OriginData]:
    """`OriginData` for each origin of a cell frame (its universe = the frame's cells then)."""
    cells = frame.select("cell_id").unique()["cell_id"].to_list()
    geometry = cell_geometry(cells)
    neighbours = ring1_pairs(cells)
    out: dict[date, OriginData] = {}
    for as_of in origins:
        ids = frame.filter(pl.col("as_of") == as_of).select("cell_id").unique()
        universe = geometry.join(ids, on="cell_id", how="semi").sort("cell_id")
        out[as_of] = origin_data(versions, universe, as_of, neighbours)
    return out


@dataclass(frozen=True)
class TruthIntensity:
    frame: pl.DataFrame  # cell_id, week_start, truth_expected_count
    manifest: Path
    sha256: str


def read_truth_intensity(
    truth_dir: Path | None, *, resolution: int, known_extracts: frozenset[str]
) -> tuple[TruthIntensity | None, str]:
    """The true weekly intensity per cell from the truth folder's manifest (file
    `INTENSITY_FILE`), checked against its digest; ``None`` with the reason when there is
    none to use (no folder, no such file, another delivery's truth)."""
    if truth_dir is None:
        return None, "no truth folder given"
    path = manifest_file(Path(truth_dir)).resolve()
    if not path.is_file():
        return None, f"{truth_dir} has no truth manifest"
    manifest = read_truth_manifest(path)
    if manifest.extract_id not in known_extracts:
        return (
            None,
            f"{path.parent} is the truth of {manifest.extract_id}, not of a delivery in the store",
        )
    entry = next((f for f in manifest.files.values() if f.file == INTENSITY_FILE), None)
    if entry is None:
        return None, f"{path.parent}: the truth manifest names no {INTENSITY_FILE}"
    file = path.parent / entry.file
    if not file.is_file():
        raise NotFoundError(f"{file}: named by the truth manifest but missing")
    digest = sha256_file(file)
    if digest != entry.sha256:
        raise InputError(f"{file}: SHA-256 {digest} differs from {entry.sha256} in the manifest")
    frame = (
        pl.scan_parquet(file)
        .filter(pl.col("h3_resolution") == resolution)
        .select(
            pl.col("cell_id").cast(pl.Utf8),
            pl.col("week_start").cast(pl.Date),
            pl.col("expected_count").cast(pl.Float64).alias("truth_expected_count"),
        )
        .collect()
    )
    if frame.is_empty():
        return None, f"{file} has no intensity at H3 resolution {resolution}"
    return TruthIntensity(frame, path, digest), f"true intensity from {path.parent}"
