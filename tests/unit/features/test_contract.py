"""The contract as code: structure, rule ids and the precise semantics that controls rely on."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from features.contract import PROTECTED_ATTRIBUTES, RULES, RULES_BY_ID, TABLES, table
from features.contract.controls import completed_years
from features.store.offline import end_of_day, visible_as_of

CONTRACT_DOC = "features/contract/register-extracts.md"


def test_eight_tables_in_contract_order() -> None:
    assert list(TABLES) == [
        "persons",
        "social_status",
        "criminal_cases",
        "admin_offences",
        "obligations",
        "releases",
        "appeals",
        "incidents",
    ]


def test_every_column_of_the_contract_document_is_in_the_schema() -> None:
    """Parse the markdown tables of the contract and compare with the code."""
    text = Path(CONTRACT_DOC).read_text(encoding="utf-8")
    sections = re.split(r"^### ", text, flags=re.MULTILINE)[1:]
    seen = 0
    for section in sections:
        name = section.split()[0]
        if name not in TABLES:
            continue
        seen += 1
        rows = re.findall(r"^\| (\w+) \| ([^|]+) \|", section, flags=re.MULTILINE)
        doc_columns = {col: typ.strip() for col, typ in rows if col != "column"}
        assert list(doc_columns) == TABLES[name].column_names, name
        for col, typ in doc_columns.items():
            spec = TABLES[name].column(col)
            assert spec.nullable == typ.endswith("?"), f"{name}.{col}"
            if typ.startswith("enum{"):
                values = tuple(typ[len("enum{") : typ.index("}")].split(","))
                assert spec.values == values, f"{name}.{col}"
    assert seen == 8


def test_rule_ids_are_unique_and_well_formed() -> None:
    ids = [r.id for rules in RULES.values() for r in rules]
    assert len(ids) == len(set(ids))
    for rule_id in ids:
        table_name, _, rest = rule_id.partition(".")
        assert table_name in TABLES and re.fullmatch(r"[a-z_]+", rest), rule_id


@pytest.mark.parametrize(
    "rule_id",
    [
        "criminal_cases.offence_before_registration",
        "criminal_cases.age_at_offence",
        "criminal_cases.outcome_date",
        "obligations.paid_le_amount",
        "obligations.due_after_imposed",
        "obligations.paid_at_iff_paid",
        "admin_offences.fine_amount_iff_fine",
        "admin_offences.person_exists",
        "social_status.valid_range",
        "incidents.occurred_before_registration",
        "persons.unique_id",
    ],
)
def test_named_rules_of_the_contract_exist(rule_id: str) -> None:
    assert rule_id in RULES_BY_ID
    assert RULES_BY_ID[rule_id].message


def test_tables_without_ids_have_no_unique_rule() -> None:
    for name in ("social_status", "releases"):
        assert f"{name}.unique_id" not in RULES_BY_ID
        assert table(name).version_key  # natural key for versioning


def test_ethnicity_is_protected() -> None:
    assert "ethnicity" in PROTECTED_ATTRIBUTES


@pytest.mark.parametrize(
    ("birth", "on", "age"),
    [
        (date(2000, 2, 29), date(2014, 2, 28), 13),
        (date(2000, 2, 29), date(2014, 3, 1), 14),
        (date(2000, 2, 29), date(2016, 2, 29), 16),
        (date(2000, 6, 15), date(2014, 6, 14), 13),
        (date(2000, 6, 15), date(2014, 6, 15), 14),
    ],
)
def test_completed_years_counts_29_february_on_1_march(birth: date, on: date, age: int) -> None:
    frame = pl.DataFrame({"b": [birth], "o": [on]})
    assert frame.select(completed_years(pl.col("b"), pl.col("o"))).item() == age


def test_as_of_means_end_of_day_utc() -> None:
    t = TABLES["criminal_cases"]
    ts = pl.Datetime("us", "UTC")
    frame = pl.DataFrame(
        {
            "registered_at": [
                datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC),
                datetime(2025, 1, 1, 0, 0, 0, tzinfo=UTC),
                datetime(2024, 6, 1, tzinfo=UTC),
                datetime(2024, 6, 1, tzinfo=UTC),
            ],
            "_valid_from": [None, None, datetime(2025, 1, 1, tzinfo=UTC), None],
            "_valid_to": [None, None, None, datetime(2025, 1, 1, tzinfo=UTC)],
        },
        schema={"registered_at": ts, "_valid_from": ts, "_valid_to": ts},
    )
    visible = frame.select(visible_as_of(t, date(2024, 12, 31))).to_series().to_list()
    # known on the last second; not at midnight after; a correction from 1 Jan is not yet
    # known, and the version it superseded is still current at the end of 31 Dec.
    assert visible == [True, False, False, True]
    assert end_of_day(date(2024, 12, 31)) == datetime(2025, 1, 1, tzinfo=UTC)
