"""Invalid rows injected on purpose, and the ledger of what a correct ingest must report.

Every damaged row is a *new* row (a clone of a real row with a fresh id, or a row of an
unknown person) or an exact duplicate of a real row: real rows are never altered, so the
accepted data - and the truth computed from it - are the same as without corruption.
Each damage (`features.simulator.damages`) declares every rule it breaks (checked against the
contract's expressions by the tests); the ledger counts a row once, and once under each rule
it breaks. Every kind of damage for the output format is injected at least once per chunk.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from features.contract.controls import RULES_BY_ID, rules_for
from features.contract.schema import TABLES
from features.simulator.damages import DAMAGES, Context, OutputFormat, damages_for
from features.simulator.writer import to_text

__all__ = ["DAMAGES", "Context", "Ledger", "TableCounts", "corrupt"]

_ID_PREFIX = {
    "persons": "P",
    "criminal_cases": "CR",
    "admin_offences": "AD",
    "obligations": "OB",
    "appeals": "AP",
    "incidents": "IN",
}


@dataclass
class TableCounts:
    rows_in: int = 0
    quarantined: int = 0
    duplicates_dropped: int = 0
    rules: dict[str, int] = field(default_factory=dict)

    @property
    def accepted(self) -> int:
        return self.rows_in - self.quarantined - self.duplicates_dropped


@dataclass
class Ledger:
    """Expected ingest counts per table, in the shape of `expected-ingest.json`."""

    extract_id: str
    tables: dict[str, TableCounts] = field(
        default_factory=lambda: {t: TableCounts() for t in TABLES}
    )

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for name, t in self.tables.items():
            order = [r.id for r in rules_for(name)]
            out[name] = {
                "rows_in": t.rows_in,
                "accepted": t.accepted,
                "quarantined": t.quarantined,
                "duplicates_dropped": t.duplicates_dropped,
                "rules": {r: t.rules[r] for r in sorted(t.rules, key=order.index)},
            }
        return {"extract_id": self.extract_id, "tables": out}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


def corrupt(
    table: str,
    frame: pl.DataFrame,
    rate: float,
    ctx: Context,
    ledger: Ledger,
    fmt: OutputFormat = "parquet",
) -> pl.DataFrame:
    """`frame` plus injected rows (shuffled in); updates `ledger`. rate <= 0: unchanged.

    For CSV the result is the delivered text (every column a string, see `to_text`), so that
    values which do not parse can be injected; for Parquet it keeps the contract types.
    """
    counts = ledger.tables[table]
    if rate <= 0 or frame.height == 0:
        counts.rows_in += frame.height
        return frame
    damages = damages_for(table, fmt)
    for d in damages:
        for r in d.rules:
            if r not in RULES_BY_ID:
                raise KeyError(f"damage of {table} declares unknown rule {r}")
    kinds = len(damages) + 1  # + exact duplicates
    n_bad = max(round(rate * frame.height), kinds)
    if n_bad <= frame.height:
        picked = ctx.rng.choice(frame.height, size=n_bad, replace=False)
    else:  # a small table: reuse rows so that every kind is injected
        picked = ctx.rng.permutation(n_bad) % frame.height
    source = frame[np.sort(picked).tolist()]
    kind = (np.arange(n_bad) + int(ctx.rng.integers(0, kinds))) % kinds

    def delivered(f: pl.DataFrame) -> pl.DataFrame:
        return to_text(f, table) if fmt == "csv" else f

    parts = [delivered(frame)]
    id_col = TABLES[table].id_column
    for k, d in enumerate(damages):
        rows = source.filter(pl.Series(kind == k))
        if rows.height == 0:
            continue
        if id_col is not None:
            rows = rows.with_columns(ctx.fresh(_ID_PREFIX[table], rows.height).alias(id_col))
        bad = d.apply(rows, ctx)
        if d.pair:
            bad = pl.concat([rows, bad])
        bad = delivered(bad)
        if d.text:
            bad = bad.with_columns([pl.lit(text).alias(col) for col, text in d.text])
        parts.append(bad)
        counts.quarantined += bad.height
        for r in d.rules:
            counts.rules[r] = counts.rules.get(r, 0) + bad.height
    dups = source.filter(pl.Series(kind == len(damages)))
    parts.append(delivered(dups))
    counts.duplicates_dropped += dups.height
    out = pl.concat(parts)
    counts.rows_in += out.height
    return out.select(pl.all().gather(ctx.rng.permutation(out.height)))
