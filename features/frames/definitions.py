"""Declarative point-in-time feature definitions (``configs/features.yaml``) as typed models.

A feature is data, not code: an entity kind, a source table, declarative row filters, an
aggregation and a window. The builder (`features.frames.builder`) compiles it to Polars
expressions and `experiments/duckdb_features.py` to SQL, so the two can be checked against each
other. Validation happens here, once, with messages that name the file, the feature and the field.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.contract import PROTECTED_ATTRIBUTES, TABLES, ColumnType
from riskcast.configio import find_config, read_yaml, validate_model

AS_OF = "as_of"
"""The reserved name of the as-of clock; filters compare a column ``to: as_of``."""
DERIVED = "derived"
"""The reserved source of features computed from other features."""
FEATURES_FILE = "features.yaml"

Scalar = str | int | float | bool


class EntityKind(StrEnum):
    """What a row of a feature frame describes; ``cell`` (map cell per week) comes later."""

    PERSON = "person"
    CELL = "cell"


class Domain(StrEnum):
    """RNR (risk-need-responsivity) domains; explanations group contributions by them."""

    CRIMINAL_HISTORY = "criminal_history"
    VIOLENCE_ESCALATION = "violence_escalation"
    FINANCIAL_DISCIPLINE = "financial_discipline"
    EMPLOYMENT_SOCIAL = "employment_social"
    SUBSTANCE_RELATED = "substance_related"
    SUPERVISION_RELEASE = "supervision_release"
    DEMOGRAPHICS_AGE = "demographics_age"


class Kind(StrEnum):
    """Static history is shown as context; only dynamic needs map to support measures."""

    STATIC = "static"
    DYNAMIC = "dynamic"


class Aggregation(StrEnum):
    """How the matching rows of one entity (as of a date) become one value.

    Empty means "the table was delivered but the entity has no matching row"; a table never
    delivered makes every feature on it null whatever the aggregation.
    """

    COUNT = "count"  # rows; empty -> 0
    COUNT_DISTINCT = "count_distinct"  # distinct non-null `column` values; empty -> 0
    SUM = "sum"  # sum of `column`; empty -> 0
    MIN = "min"  # of `column` (through `value_map` if given); empty -> null
    MAX = "max"
    MEAN = "mean"
    ANY = "any"  # 1 if a row matches; empty -> 0
    SHARE = "share"  # rows matching `condition` / rows matching; empty -> null
    LAST = "last"  # `column` at the latest `date_column` (ties: the largest value); empty -> null
    DAYS_SINCE_LAST = "days_since_last"  # as_of - latest `date_column`; empty -> null
    DAYS_SINCE_FIRST = "days_since_first"  # as_of - earliest `date_column`; empty -> null
    MONTHS_SINCE_LAST = "months_since_last"  # completed months since the latest; empty -> null
    AGE_AT_FIRST = "age_at_first"  # completed years of age at the earliest; empty -> null
    TREND = "trend"  # recent window minus the baseline before it (rate or mean); see docs
    STATE_AT = "state_at"  # 1 if a matching spell covers as_of; empty -> 0
    NO_STATE_AT = "no_state_at"  # 1 if no matching spell covers as_of; empty -> 1
    STATE_DAYS = "state_days"  # days since the start of the covering spell; not in it -> 0
    AGE_AT = "age_at"  # completed years from `column` (a birth date) to as_of
    VALUE = "value"  # the entity's own attribute (`column`, through `value_map` if given)


class DerivedOp(StrEnum):
    SUB = "sub"  # inputs[0] - inputs[1]
    DIV = "div"  # inputs[0] / inputs[1]; null when the divisor is 0
    AND_POSITIVE = "and_positive"  # 1 if every input > 0, else 0; null if any input is null


class Filter(BaseModel):
    """One declarative row condition; all filters of a feature must hold.

    Exactly one of ``in``, ``not_in``, ``equals``, ``is_null`` or ``compare`` is given.
    ``compare`` relates a date column to ``to`` (``as_of`` or another date column of the same
    table) shifted by ``offset_days``; ``if_null`` is the result when either side is null (e.g.
    a pending case has no ``outcome_at``: ``compare: ">"``, ``to: as_of``, ``if_null: true``).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    column: str
    in_: list[Scalar] | None = Field(default=None, alias="in")
    not_in: list[Scalar] | None = None
    equals: Scalar | None = None
    is_null: bool | None = None
    compare: Literal["<", "<=", ">", ">="] | None = None
    to: str | None = None
    offset_days: int = 0
    if_null: bool = False

    @model_validator(mode="after")
    def _one_condition(self) -> Self:
        given = [
            name
            for name, value in (
                ("in", self.in_),
                ("not_in", self.not_in),
                ("equals", self.equals),
                ("is_null", self.is_null),
                ("compare", self.compare),
            )
            if value is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of in, not_in, equals, is_null, compare"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if (self.compare is None) != (self.to is None):
            raise ValueError("`to` is required with `compare` and only with it")
        return self

    def columns(self) -> list[str]:
        cols = [self.column]
        if self.to is not None and self.to != AS_OF:
            cols.append(self.to)
        return cols

    def values(self) -> list[Scalar]:
        if self.in_ is not None:
            return self.in_
        if self.not_in is not None:
            return self.not_in
        if self.equals is not None:
            return [self.equals]
        return []


ENTITY_TABLES: dict[EntityKind, str] = {EntityKind.PERSON: "persons", EntityKind.CELL: "cells"}
"""The table holding one row per entity (its own attributes); ``cells`` is not in contract v1."""

_NEEDS_COLUMN = {
    Aggregation.COUNT_DISTINCT,
    Aggregation.SUM,
    Aggregation.MIN,
    Aggregation.MAX,
    Aggregation.MEAN,
    Aggregation.LAST,
    Aggregation.AGE_AT,
    Aggregation.VALUE,
}
_SPELL = {Aggregation.STATE_AT, Aggregation.NO_STATE_AT, Aggregation.STATE_DAYS}
_NO_WINDOW = _SPELL | {Aggregation.AGE_AT, Aggregation.VALUE}
_MAPPABLE = {Aggregation.MIN, Aggregation.MAX, Aggregation.MEAN, Aggregation.SUM}
_MAPPABLE |= {Aggregation.LAST, Aggregation.TREND, Aggregation.VALUE}
_NUMERIC = {Aggregation.SUM, Aggregation.MEAN, Aggregation.TREND}
_PYTHON_TYPES: dict[ColumnType, tuple[type, ...]] = {
    ColumnType.BOOL: (bool,),
    ColumnType.INT: (int,),
    ColumnType.FLOAT: (int, float),
    ColumnType.STR: (str,),
    ColumnType.ENUM: (str,),
}


class FeatureDef(BaseModel):
    """One feature: where it comes from, how it is computed, and what it means (metadata)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=63)
    entity: EntityKind = EntityKind.PERSON
    source: str
    filters: list[Filter] = Field(default_factory=list)
    aggregation: Aggregation | None = None
    column: str | None = None
    value_map: dict[str, float] | None = None
    condition: list[Filter] = Field(default_factory=list)
    date_column: str | None = None
    end_column: str | None = None
    open_end: bool = True
    window_days: int | None = Field(default=None, gt=0)
    window_offset_days: int = Field(default=0, ge=0)
    baseline_days: int | None = Field(default=None, gt=0)
    op: DerivedOp | None = None
    inputs: list[str] = Field(default_factory=list)
    domain: Domain
    kind: Kind
    direction: Literal[-1, 0, 1]
    description: str = Field(min_length=1, max_length=200, pattern=r"^[^\n]+$")
    protected: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.source == DERIVED:
            self._check_derived()
            return self
        if self.source not in TABLES:
            raise ValueError(
                f"source {self.source!r} is not a contract table nor {DERIVED!r}; "
                f"tables: {', '.join(TABLES)}"
            )
        if self.aggregation is None:
            raise ValueError("aggregation is required for a feature on a table")
        if self.op is not None or self.inputs:
            raise ValueError("op and inputs are only for source: derived")
        agg = self.aggregation
        if agg in _NEEDS_COLUMN and self.column is None:
            raise ValueError(f"aggregation {agg} needs `column`")
        if agg is Aggregation.SHARE and not self.condition:
            raise ValueError("aggregation share needs `condition` (the numerator's filters)")
        if agg is not Aggregation.SHARE and self.condition:
            raise ValueError("`condition` is only for aggregation share")
        if agg is Aggregation.TREND:
            if self.window_days is None or self.baseline_days is None:
                raise ValueError("aggregation trend needs window_days and baseline_days")
            if self.baseline_days <= self.window_days:
                raise ValueError("baseline_days must be longer than window_days")
        elif self.baseline_days is not None:
            raise ValueError("baseline_days is only for aggregation trend")
        if agg in _NO_WINDOW and (self.window_days is not None or self.window_offset_days):
            raise ValueError(f"aggregation {agg} takes no window")
        if self.window_offset_days and self.window_days is None:
            raise ValueError("window_offset_days needs window_days")
        if self.end_column is not None and agg not in _SPELL:
            raise ValueError("end_column is only for state_at, no_state_at and state_days")
        if self.value_map is not None and agg not in _MAPPABLE:
            raise ValueError(f"value_map does not apply to aggregation {agg}")
        self._check_columns()
        return self

    def _check_derived(self) -> None:
        if self.op is None or len(self.inputs) < 2:
            raise ValueError("a derived feature needs `op` and at least two `inputs`")
        if self.op in {DerivedOp.SUB, DerivedOp.DIV} and len(self.inputs) != 2:
            raise ValueError(f"op {self.op} takes exactly two inputs")
        stray = [
            name
            for name in ("aggregation", "column", "value_map", "date_column", "end_column")
            if getattr(self, name) is not None
        ]
        if stray or self.filters or self.condition or self.window_days is not None:
            raise ValueError("a derived feature takes only op and inputs (and metadata)")

    def _check_columns(self) -> None:
        table = TABLES[self.source]
        names = set(table.column_names)
        for label, col in (
            ("column", self.column),
            ("date_column", self.date_column),
            ("end_column", self.end_column),
        ):
            if col is not None and col not in names:
                raise ValueError(f"{label}: {self.source} has no column {col!r}")
        for where, filters in (("filters", self.filters), ("condition", self.condition)):
            for i, flt in enumerate(filters):
                for col in flt.columns():
                    if col not in names:
                        raise ValueError(f"{where}[{i}]: {self.source} has no column {col!r}")
                column = table.column(flt.column)
                kinds = _PYTHON_TYPES.get(column.type, ())
                wrong = [
                    v
                    for v in flt.values()
                    if not isinstance(v, kinds) or (isinstance(v, bool) and bool not in kinds)
                ]
                if wrong:
                    raise ValueError(f"{where}[{i}]: {wrong!r} are not {column.type} values")
                if column.values:
                    bad = [v for v in flt.values() if v not in column.values]
                    if bad:
                        raise ValueError(
                            f"{where}[{i}]: {bad!r} not among {flt.column} values "
                            f"{', '.join(column.values)}"
                        )
                if flt.compare is not None:
                    for col in flt.columns():
                        if table.column(col).type not in (ColumnType.DATE, ColumnType.TS):
                            raise ValueError(f"{where}[{i}]: compare needs date columns, {col!r}")
        own = {Aggregation.AGE_AT, Aggregation.VALUE}
        if (self.aggregation in own) != (self.source == ENTITY_TABLES[self.entity]):
            raise ValueError(
                f"aggregations {', '.join(own)} read the entity's own table "
                f"({ENTITY_TABLES[self.entity]}), and that table supports only them"
            )
        if self.aggregation in own:
            if self.filters:
                raise ValueError(f"aggregation {self.aggregation} takes no filters")
            return
        numeric = (ColumnType.INT, ColumnType.FLOAT, ColumnType.BOOL)
        if (
            self.aggregation in _NUMERIC
            and self.column is not None
            and self.value_map is None
            and table.column(self.column).type not in numeric
        ):
            raise ValueError(f"aggregation {self.aggregation} needs a numeric column or value_map")
        date_col = self.date_column or table.event_time
        if date_col is None:
            raise ValueError(f"{self.source} has no event time; give date_column")
        if table.column(date_col).type not in (ColumnType.DATE, ColumnType.TS):
            raise ValueError(f"date_column {date_col!r} is not a date")
        if self.aggregation in _SPELL and self.end_column is None:
            raise ValueError(f"aggregation {self.aggregation} needs end_column (the spell's end)")
        if self.value_map is not None and self.column is not None:
            values = table.column(self.column).values
            bad = [k for k in self.value_map if values and k not in values]
            if bad:
                raise ValueError(f"value_map: {bad!r} not among {self.column} values")

    # ---- derived facts -----------------------------------------------------------------------
    @property
    def is_derived(self) -> bool:
        return self.source == DERIVED

    def date_col(self) -> str:
        """The column that places a row in time (windows, days since, spells' start)."""
        if self.date_column is not None:
            return self.date_column
        event = TABLES[self.source].event_time
        assert event is not None  # checked by the validator
        return event

    def referenced_columns(self) -> set[str]:
        """Every contract column this feature reads (for the protected-attribute rule)."""
        if self.is_derived:
            return set()
        cols = {c for f in (*self.filters, *self.condition) for c in f.columns()}
        cols.update(c for c in (self.column, self.date_column, self.end_column) if c)
        return cols


class Populations(BaseModel):
    """Settings of the populations a frame can be built for."""

    model_config = ConfigDict(extra="forbid")

    released_within_months: int = Field(default=12, gt=0)


class FeatureSpec(BaseModel):
    """The whole feature configuration: populations and an ordered list of features."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    entity: EntityKind = EntityKind.PERSON
    populations: Populations = Field(default_factory=Populations)
    features: list[FeatureDef] = Field(min_length=1)

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        seen: dict[str, FeatureDef] = {}
        for i, feat in enumerate(self.features):
            where = f"features[{i}] ({feat.name})"
            if feat.name in seen:
                raise ValueError(f"{where}: duplicate feature name")
            if feat.entity is not self.entity:
                raise ValueError(f"{where}.entity: {feat.entity} differs from spec {self.entity}")
            leaked = sorted(feat.referenced_columns() & set(PROTECTED_ATTRIBUTES))
            if leaked and not feat.protected:
                raise ValueError(
                    f"{where}.protected: reads protected attribute {', '.join(leaked)}; "
                    "mark it protected: true (audit only, never a model input)"
                )
            for dep in feat.inputs:
                if dep not in seen:
                    raise ValueError(f"{where}.inputs: {dep!r} is not a feature defined above")
                if seen[dep].protected and not feat.protected:
                    raise ValueError(
                        f"{where}.protected: derived from protected feature {dep!r}; "
                        "mark it protected: true"
                    )
            seen[feat.name] = feat
        return self

    def model_inputs(self) -> list[str]:
        """Feature names a model may use: everything not protected, in spec order."""
        return [f.name for f in self.features if not f.protected]

    def protected_features(self) -> list[str]:
        """Audit-only features (protected attributes and anything marked protected)."""
        return [f.name for f in self.features if f.protected]

    def feature(self, name: str) -> FeatureDef:
        for feat in self.features:
            if feat.name == name:
                return feat
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def spec_hash(self) -> str:
        """A digest of the definitions' meaning (not the file's bytes): stored with vectors."""
        canonical = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def model_inputs(spec: FeatureSpec) -> list[str]:
    """Feature names a model may use (protected attributes excluded)."""
    return spec.model_inputs()


def parse_spec(raw: Any, *, source: str = "<features>") -> FeatureSpec:
    """Validate already-parsed YAML; errors name ``source``, the feature and the field."""
    return validate_model(FeatureSpec, raw, source)


def load_spec(path: Path | None = None) -> FeatureSpec:
    """Read and validate a feature file (default: `default_config_path`)."""
    path = path or default_config_path()
    return parse_spec(read_yaml(path, "feature definitions"), source=str(path))


def default_config_path() -> Path:
    """``features.yaml`` found the usual way (see `riskcast.configio.config_candidates`)."""
    return find_config(FEATURES_FILE)
