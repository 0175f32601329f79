"""A small, independent reading of the contract's ingest counts, for tests only.

It applies every control of `features.contract.controls` the way the contract describes
ingest (exact duplicates collapsed first, then every rule evaluated on the typed columns plus
the helper columns) and returns the counts in the shape of `expected-ingest.json`.
It is checked against the third-party fixture before it is trusted on our simulator.

Files are read without the ingest's reader: Parquet as typed (floats must be finite), CSV as
text parsed per the contract (ISO dates, timestamps ending in `Z`, `true`/`false`/`1`/`0`).
A value that does not parse is an unknown operand: it breaks its `_type` rule only, never a
range or cross-column rule (as a missing value breaks only `_required`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from features.contract import (
    PERSON_BIRTH_DATE,
    PERSON_KNOWN,
    RAW_PREFIX,
    TABLE_ORDER,
    TABLES,
    UNIQUE_CONFLICT,
    ColumnType,
    RuleContext,
    RuleKind,
    rules_for,
)
from features.contract.manifest import read_manifest


def _parse(kind: ColumnType, x: pl.Expr) -> pl.Expr:
    """Contract text -> typed value, null where the text does not parse."""
    match kind:
        case ColumnType.DATE:
            return x.str.to_date("%Y-%m-%d", strict=False)
        case ColumnType.TS:
            ts = x.str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_unit="us", strict=False)
            return ts.dt.replace_time_zone("UTC")
        case ColumnType.INT:
            return x.cast(pl.Int64, strict=False)
        case ColumnType.FLOAT:
            return x.cast(pl.Float64, strict=False)
        case ColumnType.BOOL:
            low = x.str.to_lowercase()
            return (
                pl.when(low.is_in(["true", "1"]))
                .then(True)
                .when(low.is_in(["false", "0"]))
                .then(False)
            )
        case _:
            return x


def load_table(name: str, path: Path) -> pl.DataFrame:
    """A delivered file as typed contract columns plus raw (``RAW_PREFIX``) text columns."""
    t = TABLES[name]
    if path.suffix == ".csv":
        raw = pl.read_csv(path, infer_schema=False)
        typed = [_parse(c.type, pl.col(c.name)).alias(c.name) for c in t.columns]
    else:
        raw = pl.read_parquet(path)
        typed = [pl.col(c.name) for c in t.columns]
    frame = raw.select(
        *typed, *[pl.col(c).cast(pl.String).alias(RAW_PREFIX + c) for c in t.column_names]
    )
    finite = [
        pl.when(pl.col(c.name).is_finite()).then(pl.col(c.name)).alias(c.name)
        for c in t.columns
        if c.type is ColumnType.FLOAT
    ]
    return frame.with_columns(finite)


def _unparsed(column: str) -> pl.Expr:
    return pl.col(RAW_PREFIX + column).is_not_null() & pl.col(column).is_null()


def flag_rules(
    name: str, frame: pl.DataFrame, ctx: RuleContext, persons: pl.DataFrame | None
) -> pl.DataFrame:
    """`frame` (`load_table`, without exact duplicates) with one boolean column per rule id."""
    t = TABLES[name]
    df = frame
    if t.id_column is not None:
        key = pl.col(t.id_column)
        usable = key.is_not_null() & (key.str.strip_chars() != "")  # blank ids are missing
        df = df.with_columns(
            pl.when(usable)
            .then(pl.len().over(t.id_column) > 1)
            .otherwise(False)
            .alias(UNIQUE_CONFLICT)
        )
    if t.has_person and name != "persons":
        assert persons is not None
        known = persons.select(
            pl.col("person_id"),
            pl.lit(True).alias(PERSON_KNOWN),
            pl.col("birth_date").alias(PERSON_BIRTH_DATE),
        )
        df = df.join(known, on="person_id", how="left", maintain_order="left").with_columns(
            pl.col(PERSON_KNOWN).fill_null(False)
        )
    flags = []
    for r in rules_for(name):
        broken = r.violated(ctx).fill_null(False)
        if r.kind in (RuleKind.RANGE, RuleKind.CROSS):
            broken = broken & ~pl.any_horizontal([_unparsed(c) for c in r.columns])
        flags.append(broken.alias(r.id))
    return df.with_columns(flags)


def expected_ingest(delivery: Path) -> dict[str, Any]:
    manifest = read_manifest(delivery)
    ctx = RuleContext(manifest.extracted_at)
    persons: pl.DataFrame | None = None
    tables: dict[str, Any] = {}
    for name in TABLE_ORDER:
        raw = load_table(name, delivery / manifest.tables[name].file)
        unique = raw.unique(
            subset=[RAW_PREFIX + c for c in TABLES[name].column_names], maintain_order=True
        )
        flagged = flag_rules(name, unique, ctx, persons)
        ids = [r.id for r in rules_for(name)]
        bad = flagged.select(pl.any_horizontal(ids)).to_series()
        counts = flagged.select([pl.col(i).sum() for i in ids]).row(0, named=True)
        tables[name] = {
            "rows_in": raw.height,
            "accepted": int((~bad).sum()),
            "quarantined": int(bad.sum()),
            "duplicates_dropped": raw.height - unique.height,
            "rules": {i: int(n) for i, n in counts.items() if n},
        }
        if name == "persons":
            persons = flagged.filter(~bad).select("person_id", "birth_date")
    return {"extract_id": manifest.extract_id, "tables": tables}
