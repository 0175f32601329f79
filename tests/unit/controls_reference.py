"""A small, independent reading of the contract's ingest counts, for tests only.

It applies every control of `features.contract.controls` the way the contract describes
ingest (exact duplicates collapsed first, then every rule evaluated on the typed columns plus
the helper columns) and returns the counts in the shape of `expected-ingest.json`.
It is checked against the third-party fixture before it is trusted on our simulator.
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
    RuleContext,
    rules_for,
)
from features.contract.manifest import read_manifest


def flag_rules(
    name: str, frame: pl.DataFrame, ctx: RuleContext, persons: pl.DataFrame | None
) -> pl.DataFrame:
    """`frame` (already without exact duplicates) with one boolean column per rule id."""
    t = TABLES[name]
    df = frame.with_columns(
        [pl.col(c).cast(pl.String).alias(RAW_PREFIX + c) for c in t.column_names]
    )
    if t.id_column is not None:
        key = pl.col(t.id_column)
        df = df.with_columns(
            pl.when(key.is_not_null())
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
    rules = rules_for(name)
    return df.with_columns([r.violated(ctx).fill_null(False).alias(r.id) for r in rules])


def expected_ingest(delivery: Path) -> dict[str, Any]:
    manifest = read_manifest(delivery)
    ctx = RuleContext(manifest.extracted_at)
    persons: pl.DataFrame | None = None
    tables: dict[str, Any] = {}
    for name in TABLE_ORDER:
        raw = pl.read_parquet(delivery / manifest.tables[name].file)
        unique = raw.unique(maintain_order=True)
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
