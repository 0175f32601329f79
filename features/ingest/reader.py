"""Reading one table file of a delivery (Parquet or CSV) into typed contract columns.

The result keeps, next to each typed column ``c``, a column ``RAW_PREFIX + c`` so that the
controls can tell a missing value from one that does not parse, and so that the quarantine can
show what was delivered:

- the raw column is the delivered column unchanged (CSV: text; Parquet: its physical type, but
  always text for str and enum columns, e.g. ids delivered as integers);
  a value that cannot be coerced becomes null in the typed column while its raw value is not
  null, which is what the ``_type`` control reports;
- raw values are turned into text only for the few quarantined rows (`as_text`): casting tens
  of millions of natively typed values to strings just to test them for null would cost
  minutes, and the controls only look at the raw column's nulls (and at key columns, which are
  text). ``ReadTable.raw_types`` says which physical type each raw column has.

Coercions (documented in the report's docstring too): Parquet timestamps of any unit and time
zone are converted to UTC microseconds, naive ones are taken as UTC; a Parquet date column
written as timestamps at midnight UTC is accepted as dates (other times of day are ``_type``
violations); text timestamps are ISO 8601 with ``T``, ending in ``Z`` or an offset (naive text
is taken as UTC as well); floats must be finite; ints delivered as floats must be integral;
bools as text are ``true``/``false``/``1``/``0`` (any case). Empty CSV fields are null; a
quoted empty string is an (empty) value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl
import pyarrow.parquet as pq

from features.contract import RAW_PREFIX, ColumnType, Table
from features.contract.schema import Column
from riskcast.errors import DeliveryRefused

ROW = "_row"
"""1-based number of the data row in the delivered file (a CSV's header is not counted)."""

FileFormat = Literal["parquet", "csv"]
UTC_US = pl.Datetime("us", "UTC")
TS_TEXT_FORMAT = "%Y-%m-%dT%H:%M:%S%.fZ"
_TEXT_TYPES = (ColumnType.STR, ColumnType.ENUM)  # raw is always text: key rules use str ops


@dataclass(frozen=True)
class ReadTable:
    """A table as ``_row``, raw columns (as delivered) and typed contract columns."""

    frame: pl.LazyFrame
    raw_types: dict[str, pl.DataType]


def file_format(path: Path) -> FileFormat:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return "parquet"
    if suffix == ".csv":
        return "csv"
    raise DeliveryRefused(f"{path.name}: a table file must end in .parquet or .csv")


def _scan(path: Path, fmt: FileFormat) -> pl.LazyFrame:
    if fmt == "parquet":
        return pl.scan_parquet(path)
    # Everything as text: the contract's types are applied by `coerce`, keeping the raw text.
    return pl.scan_csv(path, infer_schema=False, encoding="utf8", raise_if_empty=False)


def source_schema(table_name: str, path: Path) -> dict[str, pl.DataType]:
    """Column names and physical types of a delivered file; unreadable files refuse."""
    fmt = file_format(path)
    try:
        return dict(_scan(path, fmt).collect_schema())
    except Exception as exc:  # polars raises several kinds; all mean "damaged file"
        raise DeliveryRefused(f"{table_name}: cannot read {path.name} as {fmt}: {exc}") from exc


def count_rows(table_name: str, path: Path) -> int:
    """Data rows in a delivered file (Parquet: from the footer; CSV: parsed, header excluded)."""
    fmt = file_format(path)
    try:
        if fmt == "parquet":
            return int(pq.read_metadata(path).num_rows)
        counted = _scan(path, fmt).select(pl.len()).collect()
        return int(counted.item())
    except Exception as exc:
        raise DeliveryRefused(f"{table_name}: cannot read {path.name} as {fmt}: {exc}") from exc


def check_columns(table: Table, columns: dict[str, pl.DataType]) -> None:
    """PII guard: refuse columns the contract does not define, and missing contract columns.

    A missing nullable column is refused too: a delivery that silently lacks a column cannot be
    told apart from one whose writer lost data, and the contract only ever adds columns.
    """
    expected = table.column_names
    extra = [name for name in columns if name not in expected]
    if extra:
        listed = ", ".join(repr(x) for x in extra)
        raise DeliveryRefused(
            f"{table.name}: column {listed} is not defined by the contract; the delivery is "
            "refused so that no undefined (possibly personal) data enters the store"
        )
    missing = [name for name in expected if name not in columns]
    if missing:
        listed = ", ".join(repr(x) for x in missing)
        raise DeliveryRefused(f"{table.name}: contract column {listed} is missing from the file")
    for name, dtype in columns.items():
        if dtype.is_nested() or dtype in (pl.Binary, pl.Object):
            raise DeliveryRefused(
                f"{table.name}: column {name!r} has type {dtype}, which cannot hold a "
                f"contract {table.column(name).type.value}"
            )


def scan_table(table: Table, path: Path) -> ReadTable:
    """Lazily read a delivered table file (already verified) into typed and raw columns."""
    schema = source_schema(table.name, path)
    check_columns(table, schema)
    lf = _scan(path, file_format(path))
    return coerce(lf, table, schema)


def coerce(lf: pl.LazyFrame, table: Table, schema: dict[str, pl.DataType]) -> ReadTable:
    """Pure: typed contract columns, raw columns and ``_row`` from delivered columns."""
    raw_types = {
        c.name: pl.String() if c.type in _TEXT_TYPES else schema[c.name] for c in table.columns
    }
    raw = [pl.col(c.name).cast(raw_types[c.name]).alias(RAW_PREFIX + c.name) for c in table.columns]
    typed = [_typed(c, schema[c.name]).alias(c.name) for c in table.columns]
    frame = lf.with_row_index(ROW, offset=1).select(pl.col(ROW).cast(pl.Int64), *raw, *typed)
    return ReadTable(frame, raw_types)


def coercion_can_fail(col: Column, source: pl.DataType) -> bool:
    """Whether a delivered value of type ``source`` may not coerce (i.e. become a null)."""
    if source == pl.Null:
        return False
    if col.type in (ColumnType.STR, ColumnType.ENUM):
        return False  # anything non-nested casts to text
    if col.type is ColumnType.TS:
        return not isinstance(source, pl.Datetime)
    identity = {ColumnType.DATE: pl.Date, ColumnType.INT: pl.Int64, ColumnType.BOOL: pl.Boolean}
    return source != identity.get(col.type, pl.Null)  # floats: non-finite values fail


def _typed(col: Column, source: pl.DataType) -> pl.Expr:
    x = pl.col(col.name)
    if source == pl.Null:
        return pl.lit(None, dtype=col.dtype)
    match col.type:
        case ColumnType.STR | ColumnType.ENUM:
            return x if source == pl.String else x.cast(pl.String)
        case ColumnType.DATE:
            return _to_date(x, source)
        case ColumnType.TS:
            return _to_ts(x, source)
        case ColumnType.INT:
            return _to_int(x, source)
        case ColumnType.FLOAT:
            return _to_float(x, source)
        case ColumnType.BOOL:
            return _to_bool(x, source)
    raise AssertionError(f"unhandled column type {col.type}")  # pragma: no cover


def _null(dtype: pl.DataType) -> pl.Expr:
    return pl.lit(None, dtype=dtype)


def _datetime_utc(x: pl.Expr, source: pl.Datetime) -> pl.Expr:
    x = x.dt.replace_time_zone("UTC") if source.time_zone is None else x.dt.convert_time_zone("UTC")
    return x.cast(UTC_US)


def _to_date(x: pl.Expr, source: pl.DataType) -> pl.Expr:
    if source == pl.Date:
        return x
    if isinstance(source, pl.Datetime):
        utc = _datetime_utc(x, source)
        return pl.when(utc == utc.dt.truncate("1d")).then(utc.dt.date()).otherwise(None)
    if source == pl.String:
        return x.str.strip_chars().str.to_date("%Y-%m-%d", strict=False)
    return _null(pl.Date())


def _to_ts(x: pl.Expr, source: pl.DataType) -> pl.Expr:
    if isinstance(source, pl.Datetime):
        return _datetime_utc(x, source)
    if source == pl.String:
        text = x.str.strip_chars()
        with_zone = text.str.to_datetime(
            "%Y-%m-%dT%H:%M:%S%.f%#z", time_unit="us", time_zone="UTC", strict=False
        )
        naive = text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", time_unit="us", strict=False)
        return pl.coalesce(with_zone, naive.dt.replace_time_zone("UTC"))
    return _null(UTC_US)


def _to_int(x: pl.Expr, source: pl.DataType) -> pl.Expr:
    if source.is_integer():
        return x.cast(pl.Int64, strict=False)
    if source.is_float() or source.is_decimal():
        f = x.cast(pl.Float64)
        integral = f.is_finite() & (f == f.floor())
        return pl.when(integral).then(f.cast(pl.Int64, strict=False)).otherwise(None)
    if source == pl.String:
        return x.str.strip_chars().cast(pl.Int64, strict=False)
    return _null(pl.Int64())


def _to_float(x: pl.Expr, source: pl.DataType) -> pl.Expr:
    if source.is_numeric():
        f = x.cast(pl.Float64, strict=False)
    elif source == pl.String:
        f = x.str.strip_chars().cast(pl.Float64, strict=False)
    else:
        return _null(pl.Float64())
    return pl.when(f.is_finite()).then(f).otherwise(None)


def _to_bool(x: pl.Expr, source: pl.DataType) -> pl.Expr:
    if source == pl.Boolean:
        return x
    if source.is_integer():
        return pl.when(x == 1).then(True).when(x == 0).then(False).otherwise(None)
    if source == pl.String:
        text = x.str.strip_chars().str.to_lowercase()
        return (
            pl.when(text.is_in(["true", "1"]))
            .then(True)
            .when(text.is_in(["false", "0"]))
            .then(False)
            .otherwise(None)
        )
    return _null(pl.Boolean())


def as_text(x: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A delivered value as text, for the quarantine (ISO dates, timestamps with Z)."""
    if dtype == pl.String:
        return x
    if dtype == pl.Date:
        return x.dt.strftime("%Y-%m-%d")
    if isinstance(dtype, pl.Datetime):
        return _datetime_utc(x, dtype).dt.strftime(TS_TEXT_FORMAT)
    if dtype == pl.Boolean:
        return pl.when(x).then(pl.lit("true")).when(~x).then(pl.lit("false"))
    return x.cast(pl.String)
