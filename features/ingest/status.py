"""What the offline store holds: deliveries, current rows per table, quarantine counts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table as RichTable

from features.contract import TABLE_ORDER
from features.store.offline import VALID_TO, DeliveryRecord, OfflineStore


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
    """extract_id -> table -> quarantined rows."""


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
    quarantine = {
        extract: {t: int(pq.read_metadata(store.root / rel).num_rows) for t, rel in paths.items()}
        for extract, paths in state.quarantine.items()
    }
    return StoreStatus(store.root, state.deliveries, tuple(tables), quarantine)


def render_status(status: StoreStatus, console: Console) -> None:
    if not status.deliveries:
        console.print(f"The store at {status.root} is empty: no delivery has been ingested.")
        return
    deliveries = RichTable(title=f"Deliveries ingested into {status.root}")
    for column in ("extract", "extracted at", "ingested at", "tables", "quarantined rows"):
        deliveries.add_column(column, justify="right" if column == "quarantined rows" else "left")
    for d in status.deliveries:
        quarantined = sum(status.quarantine.get(d.extract_id, {}).values())
        deliveries.add_row(
            d.extract_id,
            f"{d.extracted_at:%Y-%m-%d %H:%M:%SZ}",
            f"{d.ingested_at:%Y-%m-%d %H:%M:%SZ}",
            str(len(d.tables)),
            f"{quarantined:,}",
        )
    console.print(deliveries)
    tables = RichTable(title="Tables (current versions)")
    tables.add_column("table")
    tables.add_column("current rows", justify="right")
    tables.add_column("all versions", justify="right")
    tables.add_column("last delivered in")
    tables.add_column("quarantined (all deliveries)", justify="right")
    for t in status.tables:
        quarantined = sum(q.get(t.name, 0) for q in status.quarantine.values())
        tables.add_row(
            t.name, f"{t.current_rows:,}", f"{t.versions:,}", t.last_extract, f"{quarantined:,}"
        )
    console.print(tables)
