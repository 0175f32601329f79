"""Invalid rows injected on purpose, and the ledger of what a correct ingest must report.

Every damaged row is a *new* row (a clone of a real row with a fresh id, or a row of an
unknown person) or an exact duplicate of a real row: real rows are never altered, so the
accepted data - and the truth computed from it - are the same as without corruption.
Each damage declares every rule it breaks (checked against the contract's expressions by
the tests); the ledger counts a row once, and once under each rule it breaks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

from features.contract.controls import RULES_BY_ID, rules_for
from features.contract.schema import TABLES
from features.simulator.ids import FABRICATED, make_ids

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


@dataclass(frozen=True)
class Damage:
    rules: tuple[str, ...]  # rule ids broken by every produced row
    apply: Transform
    pair: bool = False  # a unique-id conflict: each source row yields two rows


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


DAMAGES: dict[str, tuple[Damage, ...]] = {
    "persons": (
        Damage(("persons.sex_enum",), _set(sex="X")),
        Damage(("persons.education_enum",), _set(education="university")),
        Damage(("persons.settlement_enum",), _set(settlement="suburban")),
        Damage(("persons.birth_date_range",), _set(birth_date=date(1890, 1, 1))),
        Damage(("persons.birth_date_required",), _set(birth_date=None)),
        Damage(
            ("persons.unique_id",),
            _variant(birth_date=pl.col("birth_date") + pl.duration(days=1)),
            pair=True,
        ),
    ),
    "social_status": (
        Damage(("social_status.status_enum",), _set(status="jobless")),
        Damage(("social_status.person_exists",), _unknown_person),
        Damage(
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
        Damage(("social_status.valid_from_required",), _set(valid_from=None)),
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
        Damage(("criminal_cases.article_required",), _set(article=None)),
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
        Damage(("releases.released_at_required",), _set(released_at=None)),
        Damage(("releases.person_exists",), _unknown_person),
    ),
    "appeals": (
        Damage(("appeals.category_enum",), _set(category="roads")),
        Damage(("appeals.submitted_at_range",), _after_extraction("submitted_at", 3)),
        Damage(("appeals.submitted_at_required",), _set(submitted_at=None)),
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
        Damage(("incidents.unique_id",), _variant(lat=pl.col("lat") + 0.001), pair=True),
    ),
}
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
    table: str, frame: pl.DataFrame, rate: float, ctx: Context, ledger: Ledger
) -> pl.DataFrame:
    """`frame` plus injected rows (shuffled in); updates `ledger`. rate <= 0: unchanged."""
    counts = ledger.tables[table]
    if rate <= 0 or frame.height == 0:
        counts.rows_in += frame.height
        return frame
    damages = DAMAGES[table]
    for d in damages:
        for r in d.rules:
            if r not in RULES_BY_ID:
                raise KeyError(f"damage of {table} declares unknown rule {r}")
    kinds = len(damages) + 1  # + exact duplicates
    n_bad = max(round(rate * frame.height), kinds)
    take = min(n_bad, frame.height)
    source = frame[np.sort(ctx.rng.choice(frame.height, size=take, replace=False)).tolist()]
    kind = (np.arange(take) + int(ctx.rng.integers(0, kinds))) % kinds
    parts = [frame]
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
        parts.append(bad)
        counts.quarantined += bad.height
        for r in d.rules:
            counts.rules[r] = counts.rules.get(r, 0) + bad.height
    dups = source.filter(pl.Series(kind == len(damages)))
    parts.append(dups)
    counts.duplicates_dropped += dups.height
    out = pl.concat(parts)
    counts.rows_in += out.height
    return out.select(pl.all().gather(ctx.rng.permutation(out.height)))
