"""What the offline store holds: deliveries, current rows per table, quarantine counts."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from features.contract import TABLE_ORDER
from features.store.offline import VALID_TO, DeliveryRecord, OfflineStore, StoreState


@dataclass(frozen=True)
class TableStatus:
    name: str
    current_rows: int
    versions: int
    last_extract: str


@dataclass(frozen=True)
class StoreStatus:
    root: Path
    deliveries: tuple[DeliveryRecord, ...]
    tables: tuple[TableStatus, ...]
    quarantine: dict[str, dict[str, int]]
    """extract_id -> table -> quarantined rows (only quarantines that are that delivery's)."""
    lost_quarantine: dict[str, dict[str, str]] = field(default_factory=dict)
    """extract_id -> table -> why its quarantine cannot be counted (stores written before
    collision-free names: overwritten by a later delivery, or removed)."""


def quarantine_counts(
    store: OfflineStore, state: StoreState
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, str]]]:
    """Quarantined rows per delivery and table, counted from each delivery's own file.

    Current stores give every delivery its own files. In a store written before that, two
    deliveries whose ids sanitised alike point at one file, which holds the rows of the one
    ingested last: the earlier delivery's rows are reported lost, not counted twice or as 0.
    """
    writer_of: dict[str, str] = {}  # normalised path -> the extract that wrote it last
    for d in state.deliveries:  # ingest order
        for rel in state.quarantine.get(d.extract_id, {}).values():
            writer_of[posixpath.normpath(rel)] = d.extract_id
    counts: dict[str, dict[str, int]] = {}
    lost: dict[str, dict[str, str]] = {}
    for extract, paths in state.quarantine.items():
        counts[extract] = {}
        for table, rel in paths.items():
            owner = writer_of.get(posixpath.normpath(rel), extract)
            if owner != extract:
                lost.setdefault(extract, {})[table] = f"overwritten by extract {owner!r}"
                continue
            try:
                counts[extract][table] = int(pq.read_metadata(store.root / rel).num_rows)
            except FileNotFoundError:
                lost.setdefault(extract, {})[table] = f"file {rel} is missing"
    return counts, lost


def store_status(home: Path) -> StoreStatus:
    """Read the committed state; counts come from Parquet footers and one column scan."""
    store = OfflineStore(Path(home))
    state = store.state()
    tables: list[TableStatus] = []
    for name in sorted(state.tables, key=TABLE_ORDER.index):
        counts = (
            store.scan(name)
            .select(pl.len().alias("versions"), pl.col(VALID_TO).is_null().sum().alias("current"))
            .collect()
            .row(0, named=True)
        )
        last = next((d.extract_id for d in reversed(state.deliveries) if name in d.tables), "?")
        tables.append(TableStatus(name, int(counts["current"]), int(counts["versions"]), last))
    quarantine, lost = quarantine_counts(store, state)
    return StoreStatus(store.root, state.deliveries, tuple(tables), quarantine, lost)


def render_status(status: StoreStatus, console: Console) -> None:
    if not status.deliveries:
        console.print(f"The store at {status.root} is empty: no delivery has been ingested.")
        return
    deliveries = RichTable(title=f"Deliveries ingested into {status.root}")
    for column in ("extract", "extracted at", "ingested at", "tables", "quarantined rows"):
        deliveries.add_column(column, justify="right" if column == "quarantined rows" else "left")
    for d in status.deliveries:
        counted = f"{sum(status.quarantine.get(d.extract_id, {}).values()):,}"
        if d.extract_id in status.lost_quarantine:
            counted += f" + ? ({len(status.lost_quarantine[d.extract_id])} tables lost)"
        deliveries.add_row(
            Text(d.extract_id),  # an id is data, never rich markup
            f"{d.extracted_at:%Y-%m-%d %H:%M:%SZ}",
            f"{d.ingested_at:%Y-%m-%d %H:%M:%SZ}",
            str(len(d.tables)),
            counted,
        )
    console.print(deliveries)
    for extract, tables_lost in status.lost_quarantine.items():
        for name, why in tables_lost.items():
            console.print(
                f"quarantine of {name} in extract {extract!r} cannot be counted: {why}",
                markup=False,
                highlight=False,
            )
    tables = RichTable(title="Tables (current versions)")
    tables.add_column("table")
    tables.add_column("current rows", justify="right")
    tables.add_column("all versions", justify="right")
    tables.add_column("last delivered in")
    tables.add_column("quarantined (all deliveries)", justify="right")
    for t in status.tables:
        quarantined = sum(q.get(t.name, 0) for q in status.quarantine.values())
        tables.add_row(
            t.name,
            f"{t.current_rows:,}",
            f"{t.versions:,}",
            Text(t.last_extract),
            f"{quarantined:,}",
        )
    console.print(tables)
