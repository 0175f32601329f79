"""Every control of the contract, on a row that breaks it and on rows that do not."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

import polars as pl
import pytest

from features.contract import RULES_BY_ID, TABLES, ColumnType, RuleContext, RuleKind
from features.ingest.validate import validate_frames
from tests.factories import EXTRACTED_AT, set_value, valid_tables

Frames = dict[str, pl.DataFrame]
Breaker = Callable[[Frames], Frames]
TARGET = 0  # the row (0-based) a breaker damages; every other row stays valid


def _cell(frames: Frames, table: str, column: str) -> object:
    return frames[table].get_column(column)[TARGET]


def _set(table: str, **values: object) -> Breaker:
    def apply(frames: Frames) -> Frames:
        out = dict(frames)
        for column, value in values.items():
            v = value(frames) if callable(value) else value
            out[table] = set_value(out[table], TARGET, column, v)
        return out

    return apply


def _shift(table: str, column: str, source: str, days: int) -> Breaker:
    """Set ``column`` to ``source`` shifted by ``days`` (dates or timestamps)."""

    def value(frames: Frames) -> object:
        base = _cell(frames, table, source)
        target = TABLES[table].column(column).type
        if isinstance(base, datetime) and target is ColumnType.DATE:
            base = base.date()
        elif isinstance(base, date) and not isinstance(base, datetime) and target is ColumnType.TS:
            base = datetime.combine(base, datetime.min.time(), tzinfo=EXTRACTED_AT.tzinfo)
        assert isinstance(base, date)
        return base + timedelta(days=days)

    return _set(table, **{column: value})


def _duplicate_id_with_other_content(table: str) -> Breaker:
    def apply(frames: Frames) -> Frames:
        frame = frames[table]
        t = TABLES[table]
        other = "region" if "region" in t.column_names else "kind"
        first = frame.slice(TARGET, 1)
        current = first.get_column(other)[0]
        replacement = "XXX" if other == "region" else ("other" if current != "other" else "alimony")
        twin = first.with_columns(pl.lit(replacement).alias(other))
        return {**frames, table: pl.concat([frame, twin])}

    return apply


def _generic_breaker(rule_id: str) -> Breaker | None:
    r = RULES_BY_ID[rule_id]
    table = r.table
    column = r.columns[0]
    if r.kind is RuleKind.REQUIRED:
        return _set(table, **{column: None})
    if r.kind is RuleKind.TYPE:
        return _set(table, **{column: f"not a {TABLES[table].column(column).type.value}"})
    if r.kind is RuleKind.ENUM:
        return _set(table, **{column: "bogus"})
    if r.kind is RuleKind.UNIQUE:
        return _duplicate_id_with_other_content(table)
    if r.kind is RuleKind.PERSON_EXISTS:
        return _set(table, person_id="P-NOBODY")
    return None


AFTER_EXTRACTION = EXTRACTED_AT + timedelta(days=1)

SPECIFIC: dict[str, Breaker] = {
    "persons.birth_date_range": _set("persons", birth_date=date(1899, 12, 31)),
    "social_status.valid_range": _shift("social_status", "valid_to", "valid_from", -1),
    "social_status.recorded_after_valid_from": _shift(
        "social_status", "recorded_at", "valid_from", -1
    ),
    "criminal_cases.offence_before_registration": _shift(
        "criminal_cases", "offence_date", "registered_at", 1
    ),
    "criminal_cases.age_at_offence": lambda f: _set(
        "criminal_cases",
        offence_date=lambda g: _cell(g, "persons", "birth_date") + timedelta(days=365 * 10),  # type: ignore[operator]
    )(f),
    "criminal_cases.registered_at_range": _set("criminal_cases", registered_at=AFTER_EXTRACTION),
    "criminal_cases.outcome_date": _set(
        "criminal_cases", outcome="pending", outcome_at=date(2024, 1, 1)
    ),
    "admin_offences.offence_before_registration": _shift(
        "admin_offences", "offence_date", "registered_at", 1
    ),
    "admin_offences.registered_at_range": _set("admin_offences", registered_at=AFTER_EXTRACTION),
    "admin_offences.fine_amount_nonneg": _set("admin_offences", sanction="fine", fine_amount=-1.0),
    "admin_offences.fine_amount_iff_fine": _set(
        "admin_offences", sanction="warning", fine_amount=100.0
    ),
    "obligations.due_after_imposed": _shift("obligations", "due_at", "imposed_at", -1),
    "obligations.amount_positive": _set("obligations", amount=0.0, paid_amount=0.0, paid_at=None),
    "obligations.paid_amount_nonneg": _set("obligations", paid_amount=-1.0, paid_at=None),
    "obligations.paid_le_amount": _set(
        "obligations",
        paid_amount=lambda f: _cell(f, "obligations", "amount") + 1,  # type: ignore[operator]
    ),
    "obligations.paid_at_iff_paid": _set(
        "obligations", paid_amount=lambda f: _cell(f, "obligations", "amount"), paid_at=None
    ),
    "obligations.paid_after_imposed": _shift("obligations", "paid_at", "imposed_at", -1),
    "obligations.recorded_after_imposed": _shift("obligations", "recorded_at", "imposed_at", -1),
    "releases.sentence_months_nonneg": _set("releases", sentence_months=-1),
    "releases.supervised_after_release": _shift("releases", "supervised_until", "released_at", -1),
    "releases.recorded_after_release": _shift("releases", "recorded_at", "released_at", -1),
    "appeals.submitted_at_range": _set("appeals", submitted_at=AFTER_EXTRACTION),
    "incidents.occurred_before_registration": lambda f: _set(
        "incidents",
        occurred_at=lambda g: _cell(g, "incidents", "registered_at") + timedelta(minutes=1),  # type: ignore[operator]
    )(f),
    "incidents.registered_at_range": _set(
        "incidents", registered_at=AFTER_EXTRACTION, occurred_at=EXTRACTED_AT
    ),
    "incidents.lat_range": _set("incidents", lat=90.5),
    "incidents.lon_range": _set("incidents", lon=-180.5),
    "incidents.outside_region_bbox": _set("incidents", lat=0.0, lon=0.0),
}


def breaker(rule_id: str) -> Breaker:
    found = _generic_breaker(rule_id) or SPECIFIC.get(rule_id)
    if found is None:
        raise AssertionError(f"no test breaks {rule_id}: add one to SPECIFIC")
    return found


def _base() -> Frames:
    frames = valid_tables(3, seed=7)
    # the paid_at rule needs a paid obligation in the target row
    ob = frames["obligations"]
    frames["obligations"] = set_value(
        set_value(ob, TARGET, "paid_amount", ob.get_column("amount")[TARGET]),
        TARGET,
        "paid_at",
        ob.get_column("imposed_at")[TARGET] + timedelta(days=3),
    )
    frames["releases"] = set_value(
        frames["releases"],
        TARGET,
        "supervised_until",
        frames["releases"].get_column("released_at")[TARGET] + timedelta(days=10),
    )
    return frames


CTX = RuleContext(EXTRACTED_AT)


def test_the_base_delivery_breaks_nothing() -> None:
    results = validate_frames(_base(), CTX)
    assert {name: r.quarantined for name, r in results.items()} == dict.fromkeys(TABLES, 0)


@pytest.mark.parametrize("rule_id", sorted(RULES_BY_ID))
def test_rule_catches_the_breaking_row_and_spares_the_others(rule_id: str) -> None:
    table = RULES_BY_ID[rule_id].table
    results = validate_frames(breaker(rule_id)(_base()), CTX)
    outcome = results[table]
    broken = outcome.quarantine.filter(pl.col("_rules").list.contains(rule_id))
    assert outcome.rule_counts.get(rule_id, 0) == broken.height >= 1
    assert TARGET + 1 in broken.get_column("_row").to_list()
    # the rows the breaker did not touch are accepted
    untouched = set(range(2, results[table].rows_in + 1))
    if RULES_BY_ID[rule_id].kind is RuleKind.UNIQUE:
        untouched -= {outcome.rows_in}  # the appended twin
    assert untouched <= set(outcome.accepted.get_column("_row").to_list())
    # messages line up with rule ids
    row = broken.row(0, named=True)
    assert len(row["_messages"]) == len(row["_rules"])
    assert RULES_BY_ID[rule_id].message in row["_messages"]
    # every other table is unaffected (person_exists failures only where person_id changed)
    if table != "persons":
        assert all(r.quarantined == 0 for name, r in results.items() if name != table)


def test_unique_id_quarantines_every_row_of_the_conflict() -> None:
    frames = breaker("appeals.unique_id")(_base())
    outcome = validate_frames(frames, CTX)["appeals"]
    assert sorted(outcome.quarantine.get_column("_row").to_list()) == [1, outcome.rows_in]


def test_exact_duplicates_are_kept_once_before_the_unique_check() -> None:
    frames = _base()
    frames["incidents"] = pl.concat([frames["incidents"], frames["incidents"].slice(0, 1)])
    outcome = validate_frames(frames, CTX)["incidents"]
    assert outcome.duplicates_dropped == 1
    assert outcome.quarantined == 0
    assert outcome.duplicate_rows.to_list() == [outcome.rows_in]


def test_person_exists_and_age_use_persons_accepted_in_this_delivery() -> None:
    frames = _set("persons", sex="bogus")(_base())  # the target person is quarantined
    pid = frames["persons"].get_column("person_id")[TARGET]
    results = validate_frames(frames, CTX)
    for name in ("social_status", "criminal_cases", "obligations"):
        q = results[name].quarantine
        assert set(q.get_column("person_id").to_list()) == {pid}
        assert all(f"{name}.person_exists" in rules for rules in q.get_column("_rules").to_list())
