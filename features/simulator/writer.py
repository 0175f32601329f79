"""Streaming Parquet output: one writer per table, one row group per chunk, contract types.

The Arrow schema of each table is derived from `features.contract.schema`; a frame whose
columns or types differ from the contract is a bug here, so it fails loudly.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from features.contract.schema import TABLE_ORDER, TABLES, ColumnType

ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    ColumnType.STR: pa.large_string(),
    ColumnType.ENUM: pa.large_string(),
    ColumnType.DATE: pa.date32(),
    ColumnType.TS: pa.timestamp("us", tz="UTC"),
    ColumnType.INT: pa.int64(),
    ColumnType.FLOAT: pa.float64(),
    ColumnType.BOOL: pa.bool_(),
}
COMPRESSION = "zstd"


def arrow_schema(table: str) -> pa.Schema:
    return pa.schema(
        [pa.field(c.name, ARROW_TYPES[c.type], nullable=True) for c in TABLES[table].columns]
    )


class FrameWriter:
    """Appends frames of one fixed schema to a Parquet file, one row group per frame."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.schema = schema
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None

    def write(self, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        table = frame.to_arrow().select(self.schema.names).cast(self.schema)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self.schema, compression=COMPRESSION)
        self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self.rows += frame.height

    def close(self) -> int:
        if self._writer is None:  # no rows at all: still a valid, empty file
            pq.write_table(self.schema.empty_table(), self.path, compression=COMPRESSION)
        else:
            self._writer.close()
            self._writer = None
        return self.rows


class DeliveryWriter:
    """The eight contract tables of one delivery folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._tables = {
            name: FrameWriter(folder / f"{TABLES[name].file_stem}.parquet", arrow_schema(name))
            for name in TABLE_ORDER
        }

    def write(self, table: str, frame: pl.DataFrame) -> None:
        expected = TABLES[table].schema
        got = dict(frame.schema)
        if list(got) != list(expected) or any(got[k] != v for k, v in expected.items()):
            raise TypeError(f"{table}: frame schema {got} differs from the contract {expected}")
        self._tables[table].write(frame)

    def close(self) -> dict[str, int]:
        return {name: w.close() for name, w in self._tables.items()}

    def __enter__(self) -> DeliveryWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            return
        for w in self._tables.values():  # release file handles; the caller removes the folder
            if w._writer is not None:
                w._writer.close()
