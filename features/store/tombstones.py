"""Erasure tombstones: persons the offline store never reads again.

Why a tombstone and not a rewrite: the delivered files are the registers' record and are not
rewritten, and every committed table file holds all versions of every row. Instead the store
keeps one small file, ``<home>/store/erasures.parquet`` (``person_id``, ``erased_at``), and
every reader of person rows drops the tombstoned persons where the rows are read
(`drop_erased`, a pure filter): `OfflineStore.scan` (and so the service's directory, labels,
training), the point-in-time builder at every as-of, and the ingest, which counts a later
delivery's rows of an erased person as ``erased`` instead of storing them (so a re-delivery
never brings the person back, and rows in = accepted + quarantined + duplicates + erased).

The file holds the ids themselves: a filter needs them. It is the minimum kept to honour the
erasure, and nothing else about the person.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from riskcast import atomic
from riskcast.errors import StoreError

ERASURES_FILE = "erasures.parquet"
SCHEMA: dict[str, pl.DataType] = {
    "person_id": pl.String(),
    "erased_at": pl.Datetime("us", "UTC"),
}


def erasures_path(store_root: Path) -> Path:
    return Path(store_root) / ERASURES_FILE


def read_erasures(store_root: Path) -> pl.DataFrame:
    """Every tombstone (empty frame when nobody was erased)."""
    path = erasures_path(store_root)
    if not path.exists():
        return pl.DataFrame(schema=SCHEMA)
    try:
        return pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise StoreError(f"cannot read the erasure tombstones {path}: {exc}") from exc


def erased_ids(store_root: Path) -> frozenset[str]:
    """The ids of every erased person."""
    return frozenset(read_erasures(store_root)["person_id"].to_list())


def drop_erased(
    frame: pl.LazyFrame, erased: Collection[str], key: str = "person_id"
) -> pl.LazyFrame:
    """``frame`` without the rows of erased persons (itself when nobody was erased)."""
    if not erased:
        return frame
    return frame.filter(~pl.col(key).cast(pl.String).is_in(list(erased)))


def count_erased(frame: pl.DataFrame, erased: Collection[str], key: str = "person_id") -> int:
    """How many rows of ``frame`` belong to erased persons."""
    if not erased or frame.height == 0 or key not in frame.columns:
        return 0
    return int(frame[key].cast(pl.String).is_in(list(erased)).sum())


def add_tombstone(store_root: Path, person_id: str, at: datetime | None = None) -> bool:
    """Record the tombstone (call it under the store's write lock); False if already there."""
    current = read_erasures(store_root)
    if person_id in set(current["person_id"].to_list()):
        return False
    row = pl.DataFrame(
        {"person_id": [person_id], "erased_at": [at or datetime.now(UTC)]}, schema=SCHEMA
    )
    path = erasures_path(store_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic.replacing(path) as tmp:
        pl.concat([current, row]).write_parquet(tmp)
    return True
