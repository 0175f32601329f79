"""Pure validation of one table: exact duplicates, id conflicts and every contract control.

Order, as the contract prescribes: exact duplicate rows are collapsed first (the first
occurrence in the file is kept, the others are counted and dropped); then two or more
*different* rows with the same id are all quarantined (``unique_id``); then every control of
`features.contract.controls` runs on the remaining rows, and a row breaking any of them goes to
the quarantine with every rule it breaks.

Two rows are exact duplicates when their typed values are equal and, where a value did not
coerce, their delivered values are equal too (so that ``1.0`` and ``1`` in a CSV are one value,
as they would be once stored, while two different unparseable texts are not).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

from features.contract import (
    PERSON_BIRTH_DATE,
    PERSON_KNOWN,
    RAW_PREFIX,
    TABLE_ORDER,
    TABLES,
    UNIQUE_CONFLICT,
    Rule,
    RuleContext,
    Table,
    rules_for,
)
from features.ingest.reader import ROW, ReadTable, as_text, coerce, coercion_can_fail
from features.store.offline import VALID_TO

DUPLICATE = "_duplicate"
QUARANTINED = "_quarantined"
RULES_COLUMN = "_rules"
MESSAGES_COLUMN = "_messages"
_MASK_PREFIX = "_broken:"


@dataclass
class TableOutcome:
    """What validation made of one delivered table (frames are small except ``accepted``)."""

    table: str
    rows_in: int
    duplicates_dropped: int
    rule_counts: dict[str, int]
    accepted: pl.DataFrame
    """``_row`` and the typed contract columns of accepted rows, in file order."""
    quarantine: pl.DataFrame
    """``_row``, every contract column as delivered text, ``_rules`` and ``_messages``."""
    quarantined_keys: pl.DataFrame
    """Distinct version keys of quarantined rows (they keep earlier versions current)."""
    duplicate_rows: pl.Series = field(default_factory=lambda: pl.Series(ROW, [], pl.Int64))
    """``_row`` of every dropped exact duplicate."""

    @property
    def quarantined(self) -> int:
        return self.quarantine.height

    def check_conservation(self) -> None:
        """rows in = accepted + quarantined + duplicates dropped; anything else is a bug."""
        total = self.accepted.height + self.quarantine.height + self.duplicates_dropped
        if total != self.rows_in:
            raise AssertionError(
                f"{self.table}: ingest lost or invented rows: {self.rows_in} in, but "
                f"{self.accepted.height} accepted + {self.quarantine.height} quarantined + "
                f"{self.duplicates_dropped} duplicates = {total}"
            )


def known_persons(persons: pl.LazyFrame) -> pl.LazyFrame:
    """Persons accepted so far (all stored versions): id, known flag and latest birth date.

    The birth date is that of the current version, or of the last version for a person whose
    row was since deleted (the contract counts persons accepted in any earlier delivery).
    """
    birth = pl.col("birth_date")
    if VALID_TO in persons.collect_schema():
        # Current version (open, null _valid_to) first, then the most recently closed one.
        birth = birth.sort_by(VALID_TO, descending=True, nulls_last=False)
    return (
        persons.filter(pl.col("person_id").is_not_null())
        .group_by("person_id")
        .agg(birth.first().alias(PERSON_BIRTH_DATE))
        .with_columns(pl.lit(True).alias(PERSON_KNOWN))
    )


def _duplicate_key(t: Table, raw_types: Mapping[str, pl.DataType]) -> pl.Expr:
    parts: list[pl.Expr] = [pl.col(c) for c in t.column_names]
    for c in t.column_names:
        if not coercion_can_fail(t.column(c), raw_types[c]):
            continue  # the typed value is the delivered value
        raw = pl.col(RAW_PREFIX + c)
        # Raw value matters only where coercion failed; elsewhere the typed value decides.
        parts.append(pl.when(pl.col(c).is_null()).then(raw).alias(RAW_PREFIX + c))
    return pl.struct(parts)


def _repeated(hashes: pl.Series) -> pl.Series:
    """Hash values occurring more than once (a sort is much cheaper than a hash table here)."""
    ordered = hashes.drop_nulls().sort()
    return ordered.filter(ordered == ordered.shift(1)).unique()


def flag_duplicates(
    frame: pl.DataFrame, t: Table, raw_types: Mapping[str, pl.DataType]
) -> pl.DataFrame:
    """Add ``_duplicate``: true on every exact copy of an earlier row (the first one is kept).

    Only rows whose 64-bit row hash repeats are compared exactly: that keeps memory and time
    low on tens of millions of rows, while a hash collision can never drop a distinct row.
    """
    key = _duplicate_key(t, raw_types)
    hashes = frame.select(key.hash(seed=1)).to_series()
    repeated = _repeated(hashes)
    if repeated.is_empty():
        return frame.with_columns(pl.lit(False).alias(DUPLICATE))
    candidates = frame.filter(hashes.is_in(repeated.implode()))
    copies = candidates.filter(~key.is_first_distinct()).get_column(ROW)
    return frame.with_columns(pl.col(ROW).is_in(copies.implode()).alias(DUPLICATE))


def flag_conflicts(frame: pl.DataFrame, t: Table) -> pl.DataFrame:
    """Add ``UNIQUE_CONFLICT``: two or more kept (non-duplicate) rows share a usable id."""
    if t.id_column is None:
        return frame
    key = pl.col(t.id_column)
    usable = key.is_not_null() & (key.str.strip_chars() != "") & ~pl.col(DUPLICATE)
    hashes = frame.select(pl.when(usable).then(key.hash(seed=2))).to_series()
    repeated = _repeated(hashes)
    if repeated.is_empty():
        return frame.with_columns(pl.lit(False).alias(UNIQUE_CONFLICT))
    candidates = frame.filter(hashes.is_in(repeated.implode()))
    conflicting = candidates.filter(pl.len().over(t.id_column) > 1).get_column(ROW)
    return frame.with_columns(pl.col(ROW).is_in(conflicting.implode()).alias(UNIQUE_CONFLICT))


def _mask(r: Rule) -> str:
    return _MASK_PREFIX + r.id


def classify(
    read: ReadTable, t: Table, ctx: RuleContext, persons: pl.LazyFrame | None
) -> pl.DataFrame:
    """Materialise the table once with a duplicate flag and one boolean column per rule."""
    lf = flag_conflicts(flag_duplicates(read.frame.collect(), t, read.raw_types), t).lazy()
    kept = ~pl.col(DUPLICATE)
    if t.has_person and t.name != "persons":
        if persons is None:
            known = pl.LazyFrame(
                schema={
                    "person_id": pl.String,
                    PERSON_BIRTH_DATE: pl.Date,
                    PERSON_KNOWN: pl.Boolean,
                }
            )
        else:
            known = persons
        lf = lf.join(known, on="person_id", how="left", maintain_order="left").with_columns(
            pl.col(PERSON_KNOWN).fill_null(False)
        )
    rules = rules_for(t.name)
    masks = [(r.violated(ctx).fill_null(False) & kept).alias(_mask(r)) for r in rules]
    lf = lf.with_columns(masks).with_columns(
        pl.any_horizontal([pl.col(_mask(r)) for r in rules]).alias(QUARANTINED)
    )
    helpers = (UNIQUE_CONFLICT, PERSON_KNOWN, PERSON_BIRTH_DATE)
    return lf.drop(helpers, strict=False).collect()


def outcome(classified: pl.DataFrame, read: ReadTable, t: Table) -> TableOutcome:
    """Split a classified table into accepted rows, quarantine rows and counts."""
    rules = rules_for(t.name)
    counts = classified.select(
        pl.len().alias("rows"),
        pl.col(DUPLICATE).sum().alias("dups"),
        *[pl.col(_mask(r)).sum().alias(r.id) for r in rules],
    ).row(0, named=True)
    rule_counts = {r.id: int(counts[r.id]) for r in rules if counts[r.id]}
    rule_ids = pl.concat_list(
        [pl.when(pl.col(_mask(r))).then(pl.lit(r.id)) for r in rules]
    ).list.drop_nulls()
    messages = pl.concat_list(
        [pl.when(pl.col(_mask(r))).then(pl.lit(r.message)) for r in rules]
    ).list.drop_nulls()
    # Lazy, so that each output reads only its own columns (selection before filtering).
    frame = classified.lazy()
    quarantined = frame.filter(pl.col(QUARANTINED))
    quarantine, keys, accepted, duplicates = pl.collect_all(
        [
            quarantined.select(
                pl.col(ROW),
                *[
                    as_text(pl.col(RAW_PREFIX + c), read.raw_types[c]).alias(c)
                    for c in t.column_names
                ],
                rule_ids.alias(RULES_COLUMN),
                messages.alias(MESSAGES_COLUMN),
            ),
            quarantined.select(list(t.version_key)).unique(maintain_order=True),
            frame.filter(~pl.col(QUARANTINED) & ~pl.col(DUPLICATE)).select(ROW, *t.column_names),
            frame.filter(pl.col(DUPLICATE)).select(ROW),
        ]
    )
    result = TableOutcome(
        table=t.name,
        rows_in=int(counts["rows"]),
        duplicates_dropped=int(counts["dups"]),
        rule_counts=rule_counts,
        accepted=accepted,
        quarantine=quarantine,
        quarantined_keys=keys,
        duplicate_rows=duplicates.get_column(ROW),
    )
    result.check_conservation()
    return result


def validate_table(
    read: ReadTable, t: Table, ctx: RuleContext, persons: pl.LazyFrame | None = None
) -> TableOutcome:
    """Pure: a read table -> accepted rows, quarantine and counts (``persons``: `known_persons`)."""
    return outcome(classify(read, t, ctx, persons), read, t)


def validate_frames(
    frames: Mapping[str, pl.DataFrame], ctx: RuleContext
) -> dict[str, TableOutcome]:
    """Pure, in memory: validate a whole delivery given as frames (persons first), no store."""
    results: dict[str, TableOutcome] = {}
    persons: pl.LazyFrame | None = None
    for name in TABLE_ORDER:
        if name not in frames:
            continue
        t = TABLES[name]
        frame = frames[name]
        read = coerce(frame.lazy(), t, dict(frame.schema))
        results[name] = validate_table(read, t, ctx, persons)
        if name == "persons":
            persons = known_persons(results[name].accepted.lazy())
    return results
