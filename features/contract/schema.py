"""The register-extract contract (version 1) as data: tables, columns, types, keys and clocks.

This module and `features.contract.controls` are the single source of truth for the
contract in `features/contract/register-extracts.md`; no other module spells out a column list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import polars as pl

CONTRACT_VERSION = 1


class ColumnType(StrEnum):
    STR = "str"
    DATE = "date"
    TS = "ts"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    ENUM = "enum"


POLARS_TYPES: dict[ColumnType, pl.DataType] = {
    ColumnType.STR: pl.String(),
    ColumnType.DATE: pl.Date(),
    ColumnType.TS: pl.Datetime("us", "UTC"),
    ColumnType.INT: pl.Int64(),
    ColumnType.FLOAT: pl.Float64(),
    ColumnType.BOOL: pl.Boolean(),
    ColumnType.ENUM: pl.String(),
}


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    nullable: bool = False
    values: tuple[str, ...] = ()
    protected: bool = False
    description: str = ""

    @property
    def dtype(self) -> pl.DataType:
        return POLARS_TYPES[self.type]


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    id_column: str | None
    knowledge_time: str | None
    event_time: str | None
    natural_key: tuple[str, ...] = field(default_factory=tuple)
    has_person: bool = True
    description: str = ""

    @property
    def file_stem(self) -> str:
        return self.name

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def version_key(self) -> tuple[str, ...]:
        """Columns that identify a row across deliveries, so later versions supersede earlier."""
        if self.id_column is not None:
            return (self.id_column,)
        return self.natural_key

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def schema(self) -> dict[str, pl.DataType]:
        return {c.name: c.dtype for c in self.columns}

    @property
    def protected_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.protected]


def _enum(name: str, values: tuple[str, ...], nullable: bool = False) -> Column:
    return Column(name, ColumnType.ENUM, nullable, values)


S, D, TS, INT, F, B = (
    ColumnType.STR,
    ColumnType.DATE,
    ColumnType.TS,
    ColumnType.INT,
    ColumnType.FLOAT,
    ColumnType.BOOL,
)

SEX = ("M", "F")
SETTLEMENT = ("urban", "rural")
EDUCATION = ("none", "primary", "secondary", "vocational", "higher", "unknown")
STATUS = (
    "employed",
    "unemployed",
    "student",
    "retired",
    "social_assistance",
    "homeless",
    "unknown",
)
CRIME_CATEGORY = (
    "violent",
    "property",
    "drugs",
    "public_order",
    "sexual",
    "economic",
    "traffic",
    "other",
)
GRAVITY = ("misdemeanour", "minor", "medium", "grave", "especially_grave")
OUTCOME = (
    "pending",
    "terminated_exonerating",
    "terminated_other",
    "sent_to_court",
    "convicted",
    "acquitted",
)
ADMIN_CATEGORY = ("traffic", "public_order", "domestic", "alcohol", "drugs", "property", "other")
DETECTED_BY = ("camera", "officer", "complaint")
SANCTION = ("warning", "fine", "arrest", "licence_suspension", "other")
OBLIGATION_KIND = ("admin_fine", "criminal_fine", "alimony", "damages", "other")
SENTENCE = ("imprisonment", "restricted_freedom", "probation", "parole", "other")
APPEAL_CATEGORY = (
    "violence",
    "bullying",
    "corruption",
    "utilities",
    "drugs",
    "alcohol",
    "noise",
    "other",
)
CRIME_TYPE = ("street_robbery", "theft", "assault", "hooliganism", "vehicle", "drugs", "other")

PERSONS = Table(
    "persons",
    (
        Column("person_id", S),
        Column("birth_date", D),
        _enum("sex", SEX),
        Column("region", S),
        Column("district", S, nullable=True),
        _enum("settlement", SETTLEMENT, nullable=True),
        _enum("education", EDUCATION, nullable=True),
        Column("ethnicity", S, nullable=True, protected=True),
    ),
    id_column="person_id",
    knowledge_time=None,
    event_time=None,
    description="one row per person",
)

SOCIAL_STATUS = Table(
    "social_status",
    (
        Column("person_id", S),
        _enum("status", STATUS),
        Column("valid_from", D),
        Column("valid_to", D, nullable=True),
        Column("recorded_at", TS),
    ),
    id_column=None,
    knowledge_time="recorded_at",
    event_time="valid_from",
    natural_key=("person_id", "status", "valid_from"),
    description="spells of social situation",
)

CRIMINAL_CASES = Table(
    "criminal_cases",
    (
        Column("record_id", S),
        Column("case_id", S),
        Column("person_id", S),
        Column("offence_date", D),
        Column("registered_at", TS),
        Column("article", S),
        _enum("category", CRIME_CATEGORY),
        _enum("gravity", GRAVITY),
        Column("street", B),
        _enum("outcome", OUTCOME),
        Column("outcome_at", D, nullable=True),
        Column("region", S),
        Column("district", S, nullable=True),
    ),
    id_column="record_id",
    knowledge_time="registered_at",
    event_time="offence_date",
    description="one row per person per registered criminal offence",
)

ADMIN_OFFENCES = Table(
    "admin_offences",
    (
        Column("record_id", S),
        Column("person_id", S),
        Column("offence_date", D),
        Column("registered_at", TS),
        Column("article", S),
        _enum("category", ADMIN_CATEGORY),
        _enum("detected_by", DETECTED_BY),
        _enum("sanction", SANCTION),
        Column("fine_amount", F, nullable=True),
        Column("region", S),
    ),
    id_column="record_id",
    knowledge_time="registered_at",
    event_time="offence_date",
    description="administrative offences",
)

OBLIGATIONS = Table(
    "obligations",
    (
        Column("obligation_id", S),
        Column("person_id", S),
        _enum("kind", OBLIGATION_KIND),
        Column("imposed_at", D),
        Column("due_at", D),
        Column("amount", F),
        Column("paid_amount", F),
        Column("paid_at", D, nullable=True),
        Column("recorded_at", TS),
    ),
    id_column="obligation_id",
    knowledge_time="recorded_at",
    event_time="imposed_at",
    description="fines, alimony and other enforced financial obligations",
)

RELEASES = Table(
    "releases",
    (
        Column("person_id", S),
        Column("released_at", D),
        _enum("sentence", SENTENCE),
        Column("sentence_months", INT),
        Column("supervised_until", D, nullable=True),
        Column("recorded_at", TS),
    ),
    id_column=None,
    knowledge_time="recorded_at",
    event_time="released_at",
    natural_key=("person_id", "released_at", "sentence"),
    description="releases from custody and starts of community sentences",
)

APPEALS = Table(
    "appeals",
    (
        Column("appeal_id", S),
        Column("submitted_at", TS),
        Column("region", S),
        Column("district", S, nullable=True),
        _enum("category", APPEAL_CATEGORY),
        Column("text", S, nullable=True),
    ),
    id_column="appeal_id",
    knowledge_time="submitted_at",
    event_time="submitted_at",
    has_person=False,
    description="citizens' appeals, area level",
)

INCIDENTS = Table(
    "incidents",
    (
        Column("incident_id", S),
        Column("occurred_at", TS),
        Column("registered_at", TS),
        Column("region", S),
        Column("district", S, nullable=True),
        Column("lat", F),
        Column("lon", F),
        _enum("crime_type", CRIME_TYPE),
    ),
    id_column="incident_id",
    knowledge_time="registered_at",
    event_time="occurred_at",
    has_person=False,
    description="registered street-crime incidents",
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        PERSONS,
        SOCIAL_STATUS,
        CRIMINAL_CASES,
        ADMIN_OFFENCES,
        OBLIGATIONS,
        RELEASES,
        APPEALS,
        INCIDENTS,
    )
}
TABLE_ORDER: tuple[str, ...] = tuple(TABLES)

PROTECTED_ATTRIBUTES: tuple[str, ...] = tuple(
    c.name for t in TABLES.values() for c in t.columns if c.protected
)


def table(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        known = ", ".join(TABLES)
        raise KeyError(f"unknown table {name!r}; the contract defines {known}") from None
