"""Seeded helpers that write small contract deliveries for tests (Parquet or CSV)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from features.contract import TABLES
from features.contract.manifest import build_manifest, write_manifest


def typed_frame(table: str, rows: list[dict[str, object]]) -> pl.DataFrame:
    """A frame with exactly the contract's columns and types for ``table``."""
    schema = TABLES[table].schema
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


def write_delivery(
    folder: Path,
    tables: dict[str, pl.DataFrame],
    *,
    extract_id: str = "test-extract",
    extracted_at: datetime = datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC),
    fmt: str = "parquet",
) -> Path:
    """Write ``tables`` as a delivery with a correct manifest; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    rows: dict[str, int] = {}
    for name, frame in tables.items():
        if fmt == "parquet":
            frame.write_parquet(folder / f"{name}.parquet")
        else:
            _to_csv_frame(frame).write_csv(folder / f"{name}.csv")
        rows[name] = frame.height
    write_manifest(folder, build_manifest(folder, extract_id, extracted_at, rows))
    return folder


def _to_csv_frame(frame: pl.DataFrame) -> pl.DataFrame:
    exprs = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime):
            exprs.append(pl.col(name).dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
        else:
            exprs.append(pl.col(name))
    return frame.select(exprs)
