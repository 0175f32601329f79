"""Streaming output: one writer per table, Parquet (one row group per chunk) or CSV.

The Arrow schema of each table is derived from `features.contract.schema`; a frame whose
columns or types differ from the contract is a bug here, so it fails loudly. CSV follows the
contract's physical rules: UTF-8, a header row, ISO dates, timestamps in UTC ending in `Z`,
bools as `true`/`false`, a null as an empty field (an empty string is written quoted).
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Literal, Protocol

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
TS_TEXT = "%Y-%m-%dT%H:%M:%S%.fZ"  # fractional seconds only when there are any
OutputFormat = Literal["parquet", "csv"]


def to_text(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """A typed contract frame as the text a CSV delivery holds (nulls stay null)."""
    exprs: list[pl.Expr] = []
    for col in TABLES[table].columns:
        x = pl.col(col.name)
        match col.type:
            case ColumnType.DATE:
                x = x.dt.strftime("%Y-%m-%d")
            case ColumnType.TS:
                x = x.dt.convert_time_zone("UTC").dt.strftime(TS_TEXT)
            case ColumnType.BOOL:
                x = pl.when(x).then(pl.lit("true")).when(~x).then(pl.lit("false"))
            case _:
                x = x.cast(pl.String)
        exprs.append(x.cast(pl.String).alias(col.name))
    return frame.select(exprs)


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


class CsvWriter:
    """Appends text frames (see `to_text`) to a CSV file with one header row."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path = path
        self.columns = columns
        self.rows = 0
        self._handle: BinaryIO | None = path.open("wb")

    def write(self, frame: pl.DataFrame) -> None:
        assert self._handle is not None, "write after close"
        frame.select(self.columns).write_csv(
            self._handle, include_header=self.rows == 0 and frame.height > 0
        )
        self.rows += frame.height

    def close(self) -> int:
        if self._handle is not None:
            if self.rows == 0:  # no rows at all: still the header
                pl.DataFrame(schema=dict.fromkeys(self.columns, pl.String)).write_csv(self._handle)
            self._handle.close()
            self._handle = None
        return self.rows


class _TableWriter(Protocol):
    def write(self, frame: pl.DataFrame) -> None: ...

    def close(self) -> int: ...


class DeliveryWriter:
    """The eight contract tables of one delivery folder, as Parquet or CSV files."""

    def __init__(self, folder: Path, fmt: OutputFormat = "parquet") -> None:
        self.folder = folder
        self.fmt = fmt
        folder.mkdir(parents=True, exist_ok=True)
        self._tables: dict[str, _TableWriter] = {}
        for name in TABLE_ORDER:
            path = folder / f"{TABLES[name].file_stem}.{fmt}"
            if fmt == "csv":
                self._tables[name] = CsvWriter(path, TABLES[name].column_names)
            else:
                self._tables[name] = FrameWriter(path, arrow_schema(name))

    def write(self, table: str, frame: pl.DataFrame) -> None:
        """Write typed contract columns; for CSV, text columns (`to_text`, damaged) too."""
        expected = TABLES[table].schema
        got = dict(frame.schema)
        if self.fmt == "csv" and list(got) == list(expected) and set(got.values()) == {pl.String}:
            self._tables[table].write(frame)  # already the delivered text
            return
        if list(got) != list(expected) or any(got[k] != v for k, v in expected.items()):
            raise TypeError(f"{table}: frame schema {got} differs from the contract {expected}")
        self._tables[table].write(to_text(frame, table) if self.fmt == "csv" else frame)

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
            if isinstance(w, FrameWriter) and w._writer is not None:
                w._writer.close()
            elif isinstance(w, CsvWriter) and w._handle is not None:
                w._handle.close()
                w._handle = None
