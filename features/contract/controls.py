"""Format-logic controls of the contract, each with a stable rule id and a readable message.

A control is a polars expression that is true on rows that *break* it. Expressions run on a
frame holding the typed contract columns plus a few helper columns supplied by ingest:

- ``RAW_PREFIX + column``: the delivered value as text (to tell "missing" from "wrong type");
- ``PERSON_KNOWN``: whether ``person_id`` is among persons accepted so far;
- ``PERSON_BIRTH_DATE``: that person's birth date (for the age rule);
- ``UNIQUE_CONFLICT``: whether another, different row carries the same id.

Null operands never break a cross-column rule; the ``_required`` rule reports them instead.

``incidents.outside_region_bbox`` is the one control with a configured parameter: the
bounding box per region (``region_bounds`` in ``configs/places.yaml``, typed by
`features.cells.config`). Ingest builds its context as ``RuleContext(extracted_at)``, so the
boxes are the context's default: read from ``places.yaml`` (found the usual way,
`riskcast.configio.find_config`) whenever a context is made without them. That keeps the one
source of truth in ``configs/`` without plumbing a config path through every ingest caller; a
missing or invalid ``places.yaml`` is a ConfigError naming the file, never a silently skipped
control. Tests and tools pass ``region_bounds`` explicitly. A region without a box, a null
coordinate or one off the globe (the ``lat_range``/``lon_range`` rules report those) never
breaks the box rule: one defect, one rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

import polars as pl

from features.contract.schema import TABLES, ColumnType, Table

if TYPE_CHECKING:
    from features.cells.config import RegionBox

RAW_PREFIX = "_raw_"
PERSON_KNOWN = "_person_known"
PERSON_BIRTH_DATE = "_person_birth_date"
UNIQUE_CONFLICT = "_unique_conflict"


class RuleKind(StrEnum):
    REQUIRED = "required"
    TYPE = "type"
    ENUM = "enum"
    RANGE = "range"
    UNIQUE = "unique"
    PERSON_EXISTS = "person_exists"
    CROSS = "cross"


def configured_region_bounds() -> dict[str, RegionBox]:
    """The bounding box per region from ``configs/places.yaml`` (imported here, lazily: the
    contract package is imported by the cells package's own dependencies)."""
    from features.cells.config import load_places_config

    return dict(load_places_config().region_bounds)


@dataclass(frozen=True)
class RuleContext:
    """What a control may depend on besides the row: the delivery's extraction time and the
    configured bounding box per region (default: ``region_bounds`` of ``places.yaml``)."""

    extracted_at: datetime
    region_bounds: Mapping[str, RegionBox] = field(default_factory=configured_region_bounds)

    @property
    def extracted_date(self) -> date:
        return self.extracted_at.date()


Violation = Callable[[RuleContext], pl.Expr]


@dataclass(frozen=True)
class Rule:
    id: str
    table: str
    columns: tuple[str, ...]
    kind: RuleKind
    message: str
    violated: Violation


def c(name: str) -> pl.Expr:
    return pl.col(name)


def utc_date(name: str) -> pl.Expr:
    """The UTC calendar date of a timestamp column (contract: comparing a date with a ts)."""
    return pl.col(name).dt.convert_time_zone("UTC").dt.date()


def delivered(name: str) -> pl.Expr:
    """Whether a value was delivered at all, parsable or not: "iff" rules are about presence;
    an unparsable value breaks ``_type`` only, never a rule it would otherwise satisfy."""
    return pl.col(RAW_PREFIX + name).is_not_null()


def _broken(expr: pl.Expr) -> pl.Expr:
    return expr.fill_null(False)


def completed_years(birth: pl.Expr, on: pl.Expr) -> pl.Expr:
    """Age in completed years; a 29 February birthday counts on 1 March in other years."""
    before_birthday = (on.dt.month() < birth.dt.month()) | (
        (on.dt.month() == birth.dt.month()) & (on.dt.day() < birth.dt.day())
    )
    return (
        on.dt.year().cast(pl.Int32)
        - birth.dt.year().cast(pl.Int32)
        - before_birthday.cast(pl.Int32)
    )


def _constant(expr: pl.Expr) -> Violation:
    """A control that does not depend on the delivery's context."""

    def violated(_ctx: RuleContext) -> pl.Expr:
        return expr

    return violated


def _generic_rules(t: Table) -> list[Rule]:
    rules: list[Rule] = []
    for col in t.columns:
        name = col.name
        raw = RAW_PREFIX + name
        is_key = name in {"person_id", t.id_column}
        if not col.nullable:
            missing = pl.col(raw).is_null()
            if is_key:
                missing = missing | (pl.col(raw).str.strip_chars() == "")
            rules.append(
                Rule(
                    f"{t.name}.{name}_required",
                    t.name,
                    (name,),
                    RuleKind.REQUIRED,
                    f"{name} is required" + (" and must be non-empty" if is_key else ""),
                    _constant(missing),
                )
            )
        if col.type not in (ColumnType.STR, ColumnType.ENUM):
            rules.append(
                Rule(
                    f"{t.name}.{name}_type",
                    t.name,
                    (name,),
                    RuleKind.TYPE,
                    f"{name} is not a valid {col.type.value}",
                    _constant(pl.col(raw).is_not_null() & pl.col(name).is_null()),
                )
            )
        if col.type is ColumnType.ENUM:
            allowed = list(col.values)
            rules.append(
                Rule(
                    f"{t.name}.{name}_enum",
                    t.name,
                    (name,),
                    RuleKind.ENUM,
                    f"{name} must be one of {', '.join(allowed)}",
                    _constant(_broken(~pl.col(name).is_in(allowed))),
                )
            )
    if t.id_column is not None:
        rules.append(
            Rule(
                f"{t.name}.unique_id",
                t.name,
                (t.id_column,),
                RuleKind.UNIQUE,
                f"{t.id_column} is delivered more than once with different content",
                lambda _ctx: pl.col(UNIQUE_CONFLICT),
            )
        )
    if t.has_person and t.name != "persons":
        rules.append(
            Rule(
                f"{t.name}.person_exists",
                t.name,
                ("person_id",),
                RuleKind.PERSON_EXISTS,
                "person_id is not among persons accepted in this or an earlier delivery",
                lambda _ctx: _broken(~pl.col(PERSON_KNOWN)) & pl.col("person_id").is_not_null(),
            )
        )
    return rules


def _rule(
    table: str, rule: str, columns: tuple[str, ...], message: str, violated: Violation
) -> Rule:
    kind = RuleKind.RANGE if len(columns) == 1 else RuleKind.CROSS
    return Rule(f"{table}.{rule}", table, columns, kind, message, violated)


def _not_after_extraction(table: str, column: str) -> Rule:
    return _rule(
        table,
        f"{column}_range",
        (column,),
        f"{column} is after the delivery's extracted_at",
        lambda ctx: _broken(c(column) > pl.lit(ctx.extracted_at, dtype=pl.Datetime("us", "UTC"))),
    )


def _outside_region_bbox(ctx: RuleContext) -> pl.Expr:
    """True where the region has a box and the (on-globe) coordinates fall outside it."""
    lat, lon = c("lat"), c("lon")
    on_globe = lat.is_between(-90, 90) & lon.is_between(-180, 180)
    outside = pl.lit(False)
    for region, box in sorted(ctx.region_bounds.items()):
        off = ~lat.is_between(box.min_lat, box.max_lat) | ~lon.is_between(box.min_lon, box.max_lon)
        outside = outside | ((c("region") == region) & off).fill_null(False)
    return _broken(on_globe & outside)


def _specific_rules() -> list[Rule]:
    return [
        # persons
        _rule(
            "persons",
            "birth_date_range",
            ("birth_date",),
            "birth_date must be between 1900-01-01 and the extraction date",
            lambda ctx: _broken(
                (c("birth_date") < pl.lit(date(1900, 1, 1)))
                | (c("birth_date") > pl.lit(ctx.extracted_date))
            ),
        ),
        # social_status
        _rule(
            "social_status",
            "valid_range",
            ("valid_from", "valid_to"),
            "valid_to is before valid_from",
            lambda _ctx: _broken(c("valid_to") < c("valid_from")),
        ),
        _rule(
            "social_status",
            "recorded_after_valid_from",
            ("recorded_at", "valid_from"),
            "recorded_at is before valid_from",
            lambda _ctx: _broken(utc_date("recorded_at") < c("valid_from")),
        ),
        # criminal_cases
        _rule(
            "criminal_cases",
            "offence_before_registration",
            ("offence_date", "registered_at"),
            "offence_date is after registered_at",
            lambda _ctx: _broken(c("offence_date") > utc_date("registered_at")),
        ),
        _rule(
            "criminal_cases",
            "age_at_offence",
            ("offence_date", "person_id"),
            "the person was younger than 14 on offence_date",
            lambda _ctx: _broken(completed_years(c(PERSON_BIRTH_DATE), c("offence_date")) < 14),
        ),
        _not_after_extraction("criminal_cases", "registered_at"),
        _rule(
            "criminal_cases",
            "outcome_date",
            ("outcome", "outcome_at", "offence_date"),
            "outcome_at must be empty iff outcome is pending, and not before offence_date",
            lambda _ctx: _broken(
                ((c("outcome") == "pending") == delivered("outcome_at"))
                | (c("outcome_at") < c("offence_date"))
            ),
        ),
        # admin_offences
        _rule(
            "admin_offences",
            "offence_before_registration",
            ("offence_date", "registered_at"),
            "offence_date is after registered_at",
            lambda _ctx: _broken(c("offence_date") > utc_date("registered_at")),
        ),
        _not_after_extraction("admin_offences", "registered_at"),
        _rule(
            "admin_offences",
            "fine_amount_nonneg",
            ("fine_amount",),
            "fine_amount is negative",
            lambda _ctx: _broken(c("fine_amount") < 0),
        ),
        _rule(
            "admin_offences",
            "fine_amount_iff_fine",
            ("fine_amount", "sanction"),
            "fine_amount must be given iff sanction is fine",
            lambda _ctx: _broken((c("sanction") == "fine") != delivered("fine_amount")),
        ),
        # obligations
        _rule(
            "obligations",
            "due_after_imposed",
            ("due_at", "imposed_at"),
            "due_at is before imposed_at",
            lambda _ctx: _broken(c("due_at") < c("imposed_at")),
        ),
        _rule(
            "obligations",
            "amount_positive",
            ("amount",),
            "amount must be greater than 0",
            lambda _ctx: _broken(c("amount") <= 0),
        ),
        _rule(
            "obligations",
            "paid_amount_nonneg",
            ("paid_amount",),
            "paid_amount is negative",
            lambda _ctx: _broken(c("paid_amount") < 0),
        ),
        _rule(
            "obligations",
            "paid_le_amount",
            ("paid_amount", "amount"),
            "paid_amount exceeds amount",
            lambda _ctx: _broken(c("paid_amount") > c("amount")),
        ),
        _rule(
            "obligations",
            "paid_at_iff_paid",
            ("paid_at", "paid_amount", "amount"),
            "paid_at must be set iff paid_amount equals amount",
            lambda _ctx: _broken((c("paid_amount") == c("amount")) != delivered("paid_at")),
        ),
        _rule(
            "obligations",
            "paid_after_imposed",
            ("paid_at", "imposed_at"),
            "paid_at is before imposed_at",
            lambda _ctx: _broken(c("paid_at") < c("imposed_at")),
        ),
        _rule(
            "obligations",
            "recorded_after_imposed",
            ("recorded_at", "imposed_at"),
            "recorded_at is before imposed_at",
            lambda _ctx: _broken(utc_date("recorded_at") < c("imposed_at")),
        ),
        # releases
        _rule(
            "releases",
            "sentence_months_nonneg",
            ("sentence_months",),
            "sentence_months is negative",
            lambda _ctx: _broken(c("sentence_months") < 0),
        ),
        _rule(
            "releases",
            "supervised_after_release",
            ("supervised_until", "released_at"),
            "supervised_until is before released_at",
            lambda _ctx: _broken(c("supervised_until") < c("released_at")),
        ),
        _rule(
            "releases",
            "recorded_after_release",
            ("recorded_at", "released_at"),
            "recorded_at is before released_at",
            lambda _ctx: _broken(utc_date("recorded_at") < c("released_at")),
        ),
        # appeals
        _not_after_extraction("appeals", "submitted_at"),
        # incidents
        _rule(
            "incidents",
            "occurred_before_registration",
            ("occurred_at", "registered_at"),
            "occurred_at is after registered_at",
            lambda _ctx: _broken(c("occurred_at") > c("registered_at")),
        ),
        _not_after_extraction("incidents", "registered_at"),
        _rule(
            "incidents",
            "lat_range",
            ("lat",),
            "lat must be within -90..90",
            lambda _ctx: _broken((c("lat") < -90) | (c("lat") > 90)),
        ),
        _rule(
            "incidents",
            "lon_range",
            ("lon",),
            "lon must be within -180..180",
            lambda _ctx: _broken((c("lon") < -180) | (c("lon") > 180)),
        ),
        _rule(
            "incidents",
            "outside_region_bbox",
            ("lat", "lon", "region"),
            "lat/lon lie outside the region's bounding box (region_bounds in configs/places.yaml)",
            _outside_region_bbox,
        ),
    ]


def _build() -> dict[str, tuple[Rule, ...]]:
    by_table: dict[str, list[Rule]] = {name: _generic_rules(t) for name, t in TABLES.items()}
    for rule in _specific_rules():
        by_table[rule.table].append(rule)
    return {name: tuple(rules) for name, rules in by_table.items()}


RULES: dict[str, tuple[Rule, ...]] = _build()
RULES_BY_ID: dict[str, Rule] = {r.id: r for rules in RULES.values() for r in rules}


def rules_for(table_name: str) -> tuple[Rule, ...]:
    return RULES[table_name]


def rule(rule_id: str) -> Rule:
    try:
        return RULES_BY_ID[rule_id]
    except KeyError:
        raise KeyError(f"unknown rule id {rule_id!r}") from None
