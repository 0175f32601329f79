"""A second, later full delivery and what changed between the two.

Both deliveries are views of the same simulated world at two extraction times, so the
second one repeats the rows still on the register, adds rows known since, shows mutable
columns in their later state (outcomes, payments, spell ends), fixes rows recorded wrongly
(category, crime type, education) and leaves out rows deleted in between (erroneous double
entries, expunged admin records, annulled obligations, withdrawn appeals, incidents found not
to be crimes). `changes.parquet` in the truth folder lists every corrected and dropped row.
"""

from __future__ import annotations

import polars as pl

from features.contract.schema import TABLES

DROP_REASON = {
    "criminal_cases": "double_entry_deleted",
    "admin_offences": "expunged",
    "obligations": "annulled",
    "appeals": "withdrawn",
    "incidents": "not_a_crime",
    "persons": "deleted",
    "social_status": "deleted",
    "releases": "deleted",
}
CHANGES_SCHEMA = {
    "table": pl.String(),
    "key": pl.String(),
    "change": pl.String(),
    "columns": pl.String(),
    "reason": pl.String(),
}


def row_key(table: str) -> pl.Expr:
    """The id of a row across deliveries: its id column, else its natural key joined by '|'."""
    t = TABLES[table]
    return pl.concat_str([pl.col(c).cast(pl.String) for c in t.version_key], separator="|")


def changes(table: str, first: pl.DataFrame, second: pl.DataFrame) -> pl.DataFrame:
    """Rows of `first` corrected (same key, other content) or dropped in `second`."""
    t = TABLES[table]
    cols = [c for c in t.column_names if c not in t.version_key]
    a = first.select(row_key(table).alias("_key"), *cols)
    b = second.select(
        row_key(table).alias("_key"),
        *[pl.col(c).alias(f"{c}__2") for c in cols],
        pl.lit(True).alias("_in_second"),
    )
    joined = a.join(b, on="_key", how="left").with_columns(pl.col("_in_second").fill_null(False))
    differs = [~pl.col(c).eq_missing(pl.col(f"{c}__2")) for c in cols]
    changed = pl.concat_str(
        [pl.when(d).then(pl.lit(c)) for d, c in zip(differs, cols, strict=True)],
        separator=",",
        ignore_nulls=True,
    )
    corrected = joined.filter(pl.col("_in_second") & pl.any_horizontal(differs)).select(
        pl.lit(table).alias("table"),
        pl.col("_key").alias("key"),
        pl.lit("corrected").alias("change"),
        changed.alias("columns"),
        pl.lit(None, dtype=pl.String).alias("reason"),
    )
    dropped = joined.filter(~pl.col("_in_second")).select(
        pl.lit(table).alias("table"),
        pl.col("_key").alias("key"),
        pl.lit("dropped").alias("change"),
        pl.lit(None, dtype=pl.String).alias("columns"),
        pl.lit(DROP_REASON[table]).alias("reason"),
    )
    return pl.concat([corrected, dropped]).cast(CHANGES_SCHEMA)  # type: ignore[arg-type]
