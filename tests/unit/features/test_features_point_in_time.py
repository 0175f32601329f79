"""Point in time: rows known after T never change features as of T; corrections count from
their delivery on."""

from __future__ import annotations

import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from features.contract import TABLES
from features.frames.builder import build_features
from features.frames.definitions import FeatureSpec, load_spec
from features.ingest import ingest_delivery
from features.store.offline import OfflineStore
from tests.factories import typed_frame, write_delivery

REPO = Path(__file__).resolve().parents[3]
SPEC = load_spec(REPO / "configs" / "features.yaml")
T = date(2025, 6, 30)
AS_OF = [date(2024, 12, 15), T]
FIRST_DAY = date(2018, 1, 1)
EXTRACTED = datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)
LAST_DAY = EXTRACTED.date()
PERSONS = ["P1", "P2", "P3"]
BORN = [date(1980, 2, 29), date(1985, 3, 1), date(1990, 12, 31)]

Row = dict[str, Any]


def _persons() -> pl.DataFrame:
    rows: list[dict[str, object]] = [
        {
            "person_id": pid,
            "birth_date": born,
            "sex": "MF"[i % 2],
            "region": "AST",
            "district": None,
            "settlement": "urban",
            "education": "secondary",
            "ethnicity": None,
        }
        for i, (pid, born) in enumerate(zip(PERSONS, BORN, strict=True))
    ]
    return typed_frame("persons", rows)


def _day(lo: date, hi: date) -> st.SearchStrategy[date]:
    return st.dates(min_value=lo, max_value=hi)


@st.composite
def _known(draw: st.DrawFn, late: bool) -> tuple[date, datetime]:
    """An event date and a knowledge time: by the end of T (early) or after it (late)."""
    known = draw(_day(T + timedelta(days=1), LAST_DAY) if late else _day(FIRST_DAY, T))
    event = draw(_day(FIRST_DAY, known))
    when = datetime.combine(known, datetime.min.time(), tzinfo=UTC) + timedelta(
        minutes=draw(st.integers(0, 24 * 60 - 1))
    )
    return event, when


def _later(draw: st.DrawFn, start: date) -> date | None:
    return draw(st.none() | _day(start, LAST_DAY))


@st.composite
def case_row(draw: st.DrawFn, rid: str, late: bool) -> Row:
    offence, registered = draw(_known(late))
    outcome = draw(st.sampled_from(TABLES["criminal_cases"].column("outcome").values))
    return {
        "record_id": rid,
        "case_id": f"C{rid}",
        "person_id": draw(st.sampled_from(PERSONS)),
        "offence_date": offence,
        "registered_at": registered,
        "article": "185",
        "category": draw(st.sampled_from(TABLES["criminal_cases"].column("category").values)),
        "gravity": draw(st.sampled_from(TABLES["criminal_cases"].column("gravity").values)),
        "street": draw(st.booleans()),
        "outcome": outcome,
        "outcome_at": None if outcome == "pending" else draw(_day(offence, LAST_DAY)),
        "region": "AST",
        "district": None,
    }


@st.composite
def admin_row(draw: st.DrawFn, rid: str, late: bool) -> Row:
    offence, registered = draw(_known(late))
    sanction = draw(st.sampled_from(["warning", "fine", "arrest"]))
    return {
        "record_id": rid,
        "person_id": draw(st.sampled_from(PERSONS)),
        "offence_date": offence,
        "registered_at": registered,
        "article": "130",
        "category": draw(st.sampled_from(TABLES["admin_offences"].column("category").values)),
        "detected_by": draw(st.sampled_from(["camera", "officer", "complaint"])),
        "sanction": sanction,
        "fine_amount": float(draw(st.integers(1, 500))) if sanction == "fine" else None,
        "region": "AST",
    }


@st.composite
def obligation_row(draw: st.DrawFn, oid: str, late: bool) -> Row:
    imposed, recorded = draw(_known(late))
    amount = float(draw(st.integers(1, 1000)))
    paid = draw(st.sampled_from([0.0, amount / 2, amount]))
    return {
        "obligation_id": oid,
        "person_id": draw(st.sampled_from(PERSONS)),
        "kind": draw(st.sampled_from(TABLES["obligations"].column("kind").values)),
        "imposed_at": imposed,
        "due_at": draw(_day(imposed, LAST_DAY)),
        "amount": amount,
        "paid_amount": paid,
        "paid_at": draw(_day(imposed, LAST_DAY)) if paid == amount else None,
        "recorded_at": recorded,
    }


@st.composite
def status_row(draw: st.DrawFn, _id: str, late: bool) -> Row:
    start, recorded = draw(_known(late))
    return {
        "person_id": draw(st.sampled_from(PERSONS)),
        "status": draw(st.sampled_from(TABLES["social_status"].column("status").values)),
        "valid_from": start,
        "valid_to": _later(draw, start),
        "recorded_at": recorded,
    }


@st.composite
def release_row(draw: st.DrawFn, _id: str, late: bool) -> Row:
    released, recorded = draw(_known(late))
    return {
        "person_id": draw(st.sampled_from(PERSONS)),
        "released_at": released,
        "sentence": draw(st.sampled_from(TABLES["releases"].column("sentence").values)),
        "sentence_months": draw(st.integers(0, 60)),
        "supervised_until": _later(draw, released),
        "recorded_at": recorded,
    }


ROWS = {
    "criminal_cases": case_row,
    "admin_offences": admin_row,
    "obligations": obligation_row,
    "social_status": status_row,
    "releases": release_row,
}


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[dict[str, list[Row]], dict[str, list[Row]]]:
    """Two deliveries that agree on every row known by T and differ arbitrarily after it:
    late rows are kept, deleted or altered (same id, new content), and new late rows added."""
    one: dict[str, list[Row]] = {}
    two: dict[str, list[Row]] = {}
    for table, make in ROWS.items():
        early = [draw(make(f"E{i}", False)) for i in range(draw(st.integers(0, 5)))]
        late = [draw(make(f"L{i}", True)) for i in range(draw(st.integers(0, 4)))]
        changed: list[Row] = []
        for i, row in enumerate(late):
            action = draw(st.sampled_from(["keep", "delete", "alter"]))
            if action == "keep":
                changed.append(row)
            elif action == "alter":
                changed.append(draw(make(f"L{i}", True)))
        changed += [draw(make(f"N{i}", True)) for i in range(draw(st.integers(0, 3)))]
        one[table] = early + late
        two[table] = early + changed
    return one, two


def _features(root: Path, rows: dict[str, list[Row]], spec: FeatureSpec) -> pl.DataFrame:
    tables = {"persons": _persons(), **{t: typed_frame(t, r) for t, r in rows.items()}}
    report = ingest_delivery(write_delivery(root / "delivery", tables), root / "home")
    assert all(t.quarantined == 0 for t in report.tables.values()), report.tables
    frame = build_features(OfflineStore(root / "home"), spec, AS_OF, "all")
    return frame.collect(engine="streaming").sort("as_of", "person_id")


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(pair=deliveries())
def test_rows_known_after_t_never_change_features_as_of_t(
    pair: tuple[dict[str, list[Row]], dict[str, list[Row]]],
) -> None:
    one, two = pair
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        assert_frame_equal(_features(Path(a), one, SPEC), _features(Path(b), two, SPEC))


# ---- corrections ----------------------------------------------------------------------------
D1_AT = datetime(2025, 3, 31, 23, 59, 59, tzinfo=UTC)
D2_AT = datetime(2025, 6, 30, 23, 59, 59, tzinfo=UTC)


def _case(rid: str, **kw: Any) -> Row:
    row: Row = {
        "record_id": rid,
        "case_id": f"C{rid}",
        "person_id": "P1",
        "offence_date": date(2025, 1, 10),
        "registered_at": datetime(2025, 1, 12, tzinfo=UTC),
        "article": "185",
        "category": "property",
        "gravity": "minor",
        "street": False,
        "outcome": "pending",
        "outcome_at": None,
        "region": "AST",
        "district": None,
    }
    row.update(kw)
    return row


def _obligation(**kw: Any) -> Row:
    row: Row = {
        "obligation_id": "O1",
        "person_id": "P1",
        "kind": "alimony",
        "imposed_at": date(2024, 10, 1),
        "due_at": date(2024, 11, 1),
        "amount": 400.0,
        "paid_amount": 0.0,
        "paid_at": None,
        "recorded_at": datetime(2024, 10, 2, tzinfo=UTC),
    }
    row.update(kw)
    return row


def _first_delivery() -> dict[str, pl.DataFrame]:
    return {
        "persons": _persons(),
        "criminal_cases": typed_frame("criminal_cases", [_case("X"), _case("Y")]),
        "obligations": typed_frame("obligations", [_obligation()]),
    }


def _second_delivery() -> dict[str, pl.DataFrame]:
    """X corrected (violent, convicted back in February), Y expunged, O1 paid retroactively,
    and a person registered for the first time."""
    newcomer = _persons().head(1).with_columns(pl.lit("P9").alias("person_id"))
    return {
        "persons": pl.concat([_persons(), newcomer]),
        "criminal_cases": typed_frame(
            "criminal_cases",
            [_case("X", category="violent", outcome="convicted", outcome_at=date(2025, 2, 1))],
        ),
        "obligations": typed_frame(
            "obligations", [_obligation(paid_amount=400.0, paid_at=date(2024, 10, 20))]
        ),
    }


def make_correction_stores(root: Path) -> tuple[OfflineStore, OfflineStore]:
    """A store with the first delivery only, and one with both (corrections, deletion)."""
    first = write_delivery(root / "d1", _first_delivery(), extract_id="d1", extracted_at=D1_AT)
    second = write_delivery(root / "d2", _second_delivery(), extract_id="d2", extracted_at=D2_AT)
    ingest_delivery(first, root / "only-first")
    ingest_delivery(first, root / "both")
    ingest_delivery(second, root / "both")
    return OfflineStore(root / "only-first"), OfflineStore(root / "both")


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[OfflineStore, OfflineStore]:
    return make_correction_stores(tmp_path_factory.mktemp("corrections"))


BEFORE = [date(2025, 1, 31), date(2025, 3, 31), date(2025, 6, 29)]
AFTER = [date(2025, 6, 30), date(2025, 9, 1)]


def _build(store: OfflineStore, dates: list[date]) -> pl.DataFrame:
    return (
        build_features(store, SPEC, dates, allow_after_extraction=True)
        .collect()
        .sort("as_of", "person_id")
    )


def test_correction_invisible_before_its_delivery(
    stores: tuple[OfflineStore, OfflineStore],
) -> None:
    only_first, both = stores
    assert_frame_equal(_build(only_first, BEFORE), _build(both, BEFORE))


def test_correction_visible_from_its_delivery(stores: tuple[OfflineStore, OfflineStore]) -> None:
    only_first, both = stores
    old = _build(only_first, AFTER).filter(pl.col("person_id") == "P1")
    new = _build(both, AFTER).filter(pl.col("person_id") == "P1")
    assert old["cases_total"].to_list() == [2, 2]
    assert new["cases_total"].to_list() == [1, 1]  # Y expunged
    assert new["cases_violent_365d"].to_list() == [1, 1]  # X corrected to violent
    assert new["convictions_known"].to_list() == [1, 1]
    assert new["pending_cases_at"].to_list() == [0, 0]
    assert old["obligations_overdue_at"].to_list() == [1, 1]
    assert new["obligations_overdue_at"].to_list() == [0, 0]  # paid before due, known from d2
    assert new["obligations_share_paid_on_time"].to_list() == [1.0, 1.0]


def test_person_first_delivered_later_is_known_from_that_delivery(
    stores: tuple[OfflineStore, OfflineStore],
) -> None:
    _, both = stores
    known = _build(both, [*BEFORE, *AFTER]).filter(pl.col("person_id") == "P9")
    assert known["as_of"].to_list() == AFTER
