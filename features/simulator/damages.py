"""The kinds of invalid rows the corrupter injects, each declaring every rule it breaks.

A `Damage` turns clones of real rows (already given a fresh id) into invalid rows: a typed
transform (`apply`) and, for CSV only, text written in place of a value (`text`, for
`_type` violations a typed file cannot hold). `damages_for(table, fmt)` lists the kinds
injected for an output format; `breakable_rules(table, fmt)` is every rule id of the table
minus `UNBREAKABLE` - what the injection must cover, and does (checked by the tests).

Besides the hand-written kinds (enums, ranges, cross-column rules, unknown persons, id
conflicts), one kind per rule is generated: `_required` (a null in each non-nullable column),
`_type` in Parquet for floats (NaN / infinity: the contract's floats are finite), `_type` in
CSV for every date, timestamp, int, float and bool column (text that does not parse).
An unparseable value is an unknown operand: it breaks its `_type` rule only, never a
cross-column rule (as a null breaks only `_required`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal

import numpy as np
import polars as pl

from features.contract.controls import RULES_BY_ID, RuleKind, rules_for
from features.contract.schema import TABLES, ColumnType
from features.simulator.ids import FABRICATED, make_ids

OutputFormat = Literal["parquet", "csv"]
FORMATS: tuple[OutputFormat, ...] = ("parquet", "csv")
BOTH: frozenset[OutputFormat] = frozenset(FORMATS)
CSV_ONLY: frozenset[OutputFormat] = frozenset({"csv"})
PARQUET_ONLY: frozenset[OutputFormat] = frozenset({"parquet"})

Transform = Callable[[pl.DataFrame, "Context"], pl.DataFrame]


@dataclass
class Context:
    """What damages may need: the extraction time, the chunk's persons, fresh-id counters."""

    extracted_at: datetime
    persons: pl.DataFrame
    rng: np.random.Generator
    next_fabricated: dict[str, int] = field(default_factory=dict)

    def fresh(self, prefix: str, n: int) -> pl.Series:
        start = self.next_fabricated.get(prefix, 0)
        self.next_fabricated[prefix] = start + n
        return make_ids(prefix, FABRICATED + np.arange(start, start + n, dtype=np.int64))


def _same(f: pl.DataFrame, _ctx: Context) -> pl.DataFrame:
    return f


@dataclass(frozen=True)
class Damage:
    rules: tuple[str, ...]  # rule ids broken by every produced row
    apply: Transform = _same
    pair: bool = False  # a unique-id conflict: each source row yields two rows
    formats: frozenset[OutputFormat] = BOTH
    text: tuple[tuple[str, str], ...] = ()  # CSV: (column, delivered text) after rendering


def _set(**values: object) -> Transform:
    def apply(f: pl.DataFrame, _ctx: Context) -> pl.DataFrame:
        return f.with_columns([pl.lit(v, dtype=f.schema[k]).alias(k) for k, v in values.items()])

    return apply


def _exprs(**exprs: pl.Expr) -> Transform:
    def apply(f: pl.DataFrame, _ctx: Context) -> pl.DataFrame:
        return f.with_columns([e.cast(f.schema[k]).alias(k) for k, e in exprs.items()])

    return apply


def _unknown_person(f: pl.DataFrame, ctx: Context) -> pl.DataFrame:
    return f.with_columns(ctx.fresh("P", f.height).alias("person_id"))


def _ts_days(col: str, days: int, hour: int = 12) -> pl.Expr:
    """Noon (by default) `days` after the date `col` (a date column), as a UTC timestamp."""
    return (
        pl.col(col).cast(pl.Datetime("us")) + pl.duration(days=days, hours=hour)
    ).dt.replace_time_zone("UTC")


def _after_extraction(col: str, days: int) -> Transform:
    def apply(f: pl.DataFrame, ctx: Context) -> pl.DataFrame:
        when = ctx.extracted_at + timedelta(days=days)
        return f.with_columns(pl.lit(when, dtype=pl.Datetime("us", "UTC")).alias(col))

    return apply


def _too_young(f: pl.DataFrame, ctx: Context) -> pl.DataFrame:
    """A case of a real person dated when they were 10 (registered 3 days later)."""
    last = ctx.extracted_at.date()
    eligible = ctx.persons.filter(
        pl.col("birth_date").is_between(
            last - timedelta(days=40 * 365), last - timedelta(days=12 * 365)
        )
    )
    if eligible.height == 0:
        return f.clear()
    pick = ctx.rng.integers(0, eligible.height, f.height)
    who = eligible[pick.tolist()]
    offence = who["birth_date"].dt.offset_by("10y")
    return f.with_columns(
        who["person_id"].alias("person_id"),
        offence.alias("offence_date"),
        (offence.cast(pl.Datetime("us")) + pl.duration(days=3, hours=12))
        .dt.replace_time_zone("UTC")
        .alias("registered_at"),
        pl.lit("pending").alias("outcome"),
        pl.lit(None, dtype=pl.Date).alias("outcome_at"),
    )


def _variant(**exprs: pl.Expr) -> Transform:
    """The second row of a unique-id pair: same id, different but valid content."""
    return _exprs(**exprs)


HAND_WRITTEN: dict[str, tuple[Damage, ...]] = {
    "persons": (
        Damage(("persons.sex_enum",), _set(sex="X")),
        Damage(("persons.education_enum",), _set(education="university")),
        Damage(("persons.settlement_enum",), _set(settlement="suburban")),
        Damage(("persons.birth_date_range",), _set(birth_date=date(1890, 1, 1))),
        Damage(
            ("persons.unique_id",),
            _variant(birth_date=pl.col("birth_date") + pl.duration(days=1)),
            pair=True,
        ),
    ),
    "social_status": (
        Damage(("social_status.status_enum",), _set(status="jobless")),
        Damage(("social_status.person_exists",), _unknown_person),
        Damage(  # a blank id is missing, and (not being null) names no known person
            ("social_status.person_id_required", "social_status.person_exists"), _set(person_id="")
        ),
        Damage(
            ("social_status.valid_range",),
            _exprs(valid_to=pl.col("valid_from") - pl.duration(days=5)),
        ),
        Damage(
            ("social_status.recorded_after_valid_from",),
            _exprs(recorded_at=_ts_days("valid_from", -3)),
        ),
    ),
    "criminal_cases": (
        Damage(("criminal_cases.category_enum",), _set(category="cyber")),
        Damage(("criminal_cases.gravity_enum",), _set(gravity="severe")),
        Damage(
            ("criminal_cases.outcome_enum",),
            _exprs(outcome=pl.lit("closed"), outcome_at=pl.col("registered_at").dt.date()),
        ),
        Damage(("criminal_cases.person_exists",), _unknown_person),
        Damage(
            ("criminal_cases.offence_before_registration",),
            _exprs(
                offence_date=pl.col("registered_at").dt.date() + pl.duration(days=5),
                outcome=pl.lit("pending"),
                outcome_at=pl.lit(None, dtype=pl.Date),
            ),
        ),
        Damage(("criminal_cases.age_at_offence",), _too_young),
        Damage(("criminal_cases.registered_at_range",), _after_extraction("registered_at", 1)),
        Damage(
            ("criminal_cases.outcome_date",),
            _exprs(outcome=pl.lit("pending"), outcome_at=pl.col("registered_at").dt.date()),
        ),
        Damage(("criminal_cases.unique_id",), _variant(street=~pl.col("street")), pair=True),
    ),
    "admin_offences": (
        Damage(("admin_offences.category_enum",), _set(category="littering")),
        Damage(("admin_offences.detected_by_enum",), _set(detected_by="drone")),
        Damage(
            ("admin_offences.sanction_enum",), _set(sanction="community_work", fine_amount=None)
        ),
        Damage(("admin_offences.fine_amount_nonneg",), _set(sanction="fine", fine_amount=-500.0)),
        Damage(
            ("admin_offences.fine_amount_iff_fine",), _set(sanction="warning", fine_amount=1000.0)
        ),
        Damage(
            ("admin_offences.offence_before_registration",),
            _exprs(offence_date=pl.col("registered_at").dt.date() + pl.duration(days=3)),
        ),
        Damage(("admin_offences.registered_at_range",), _after_extraction("registered_at", 2)),
        Damage(("admin_offences.person_exists",), _unknown_person),
        Damage(
            ("admin_offences.unique_id",),
            _variant(
                detected_by=pl.when(pl.col("detected_by") == "officer")
                .then(pl.lit("complaint"))
                .otherwise(pl.lit("officer"))
            ),
            pair=True,
        ),
    ),
    "obligations": (
        Damage(("obligations.kind_enum",), _set(kind="tax")),
        Damage(
            ("obligations.amount_positive", "obligations.paid_le_amount"),
            _exprs(
                amount=-pl.col("amount"),
                paid_amount=pl.lit(0.0),
                paid_at=pl.lit(None, dtype=pl.Date),
            ),
        ),
        Damage(
            ("obligations.paid_amount_nonneg",),
            _exprs(paid_amount=pl.lit(-100.0), paid_at=pl.lit(None, dtype=pl.Date)),
        ),
        Damage(
            ("obligations.paid_le_amount",),
            _exprs(paid_amount=pl.col("amount") + 1000.0, paid_at=pl.lit(None, dtype=pl.Date)),
        ),
        Damage(
            ("obligations.paid_at_iff_paid",),
            _exprs(paid_amount=pl.col("amount"), paid_at=pl.lit(None, dtype=pl.Date)),
        ),
        Damage(
            ("obligations.due_after_imposed",),
            _exprs(due_at=pl.col("imposed_at") - pl.duration(days=10)),
        ),
        Damage(
            ("obligations.paid_after_imposed",),
            _exprs(
                paid_amount=pl.col("amount"), paid_at=pl.col("imposed_at") - pl.duration(days=5)
            ),
        ),
        Damage(
            ("obligations.recorded_after_imposed",),
            _exprs(recorded_at=_ts_days("imposed_at", -2)),
        ),
        Damage(("obligations.person_exists",), _unknown_person),
        Damage(
            ("obligations.unique_id",),
            _variant(due_at=pl.col("due_at") + pl.duration(days=7)),
            pair=True,
        ),
    ),
    "releases": (
        Damage(("releases.sentence_enum",), _set(sentence="community")),
        Damage(("releases.sentence_months_nonneg",), _set(sentence_months=-3)),
        Damage(
            ("releases.supervised_after_release",),
            _exprs(supervised_until=pl.col("released_at") - pl.duration(days=30)),
        ),
        Damage(
            ("releases.recorded_after_release",), _exprs(recorded_at=_ts_days("released_at", -2))
        ),
        Damage(("releases.person_exists",), _unknown_person),
    ),
    "appeals": (
        Damage(("appeals.category_enum",), _set(category="roads")),
        Damage(("appeals.submitted_at_range",), _after_extraction("submitted_at", 3)),
        Damage(
            ("appeals.unique_id",),
            _variant(
                category=pl.when(pl.col("category") == "other")
                .then(pl.lit("noise"))
                .otherwise(pl.lit("other"))
            ),
            pair=True,
        ),
    ),
    "incidents": (
        Damage(("incidents.crime_type_enum",), _set(crime_type="fraud")),
        Damage(
            ("incidents.occurred_before_registration",),
            _exprs(occurred_at=pl.col("registered_at") + pl.duration(hours=2)),
        ),
        Damage(("incidents.registered_at_range",), _after_extraction("registered_at", 1)),
        Damage(("incidents.lat_range",), _set(lat=123.4)),
        Damage(("incidents.lon_range",), _set(lon=-200.5)),
        # lat and lon swapped: on the globe, far outside the region's box (configs/places.yaml)
        Damage(("incidents.outside_region_bbox",), _exprs(lat=pl.col("lon"), lon=pl.col("lat"))),
        Damage(("incidents.unique_id",), _variant(lat=pl.col("lat") + 0.001), pair=True),
    ),
}

# Text that does not parse as the column's type (CSV): realistic, non-ISO renderings.
UNPARSEABLE: dict[ColumnType, str] = {
    ColumnType.DATE: "31.12.2020",
    ColumnType.TS: "31.12.2020 14:05",
    ColumnType.INT: "3,5",
    ColumnType.FLOAT: "1 500,75",
    ColumnType.BOOL: "n/a",
}
# Non-finite floats (Parquet): a typed file can still hold a float the contract refuses.
NON_FINITE = (float("nan"), float("inf"), float("-inf"))

# Where a value is required by another column (an "iff" rule), the damaged row is set up so
# that a value is expected: the unparseable value is then the only defect.
_EXPECT_VALUE: dict[tuple[str, str], Transform] = {
    ("criminal_cases", "outcome_at"): _exprs(
        outcome=pl.when(pl.col("outcome") == "pending")
        .then(pl.lit("convicted"))
        .otherwise(pl.col("outcome"))
    ),
    ("admin_offences", "fine_amount"): _set(sanction="fine"),
    ("obligations", "paid_at"): _exprs(paid_amount=pl.col("amount")),
}

UNBREAKABLE: dict[OutputFormat, str] = {
    "parquet": "`_type` rules of date, timestamp, int and bool columns: a typed Parquet column "
    "holds only values of its type (float `_type` rules are broken with NaN / infinity)",
    "csv": "none: every rule can be broken in a CSV file",
}


def _unbreakable(rule_id: str, fmt: OutputFormat) -> bool:
    r = RULES_BY_ID[rule_id]
    if fmt == "parquet" and r.kind is RuleKind.TYPE:
        return TABLES[r.table].column(r.columns[0]).type is not ColumnType.FLOAT
    return False


def breakable_rules(table: str, fmt: OutputFormat) -> set[str]:
    """Every rule id of `table` a delivery in `fmt` can break (all rules minus UNBREAKABLE)."""
    return {r.id for r in rules_for(table) if not _unbreakable(r.id, fmt)}


def _generated(table: str) -> list[Damage]:
    """One kind per `_required` rule and per `_type` rule (Parquet floats, CSV all)."""
    t = TABLES[table]
    covered = {r for d in HAND_WRITTEN[table] for r in d.rules}
    out: list[Damage] = []
    for i, col in enumerate(t.columns):
        required = f"{table}.{col.name}_required"
        if not col.nullable and required not in covered:
            out.append(Damage((required,), _set(**{col.name: None})))
        if col.type in UNPARSEABLE:
            rule_id = f"{table}.{col.name}_type"
            setup = _EXPECT_VALUE.get((table, col.name), _same)
            if col.type is ColumnType.FLOAT:
                bad = NON_FINITE[i % len(NON_FINITE)]
                out.append(
                    Damage((rule_id,), _then(setup, _set(**{col.name: bad})), formats=PARQUET_ONLY)
                )
            out.append(
                Damage(
                    (rule_id,), setup, formats=CSV_ONLY, text=((col.name, UNPARSEABLE[col.type]),)
                )
            )
    return out


def _then(first: Transform, second: Transform) -> Transform:
    def apply(f: pl.DataFrame, ctx: Context) -> pl.DataFrame:
        return second(first(f, ctx), ctx)

    return apply


DAMAGES: dict[str, tuple[Damage, ...]] = {
    name: (*HAND_WRITTEN[name], *_generated(name)) for name in TABLES
}


def damages_for(table: str, fmt: OutputFormat) -> tuple[Damage, ...]:
    """The kinds of damage injected into `table` when writing `fmt`."""
    return tuple(d for d in DAMAGES[table] if fmt in d.formats)


def declared_rules(table: str, fmt: OutputFormat) -> set[str]:
    """Rule ids the damages injected into `table` in `fmt` declare (= breakable_rules)."""
    return {r for d in damages_for(table, fmt) for r in d.rules}
