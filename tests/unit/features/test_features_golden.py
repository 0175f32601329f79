"""Golden values: a hand-made delivery, ingested, with features computed by hand.

T1 = 2025-02-28 and T2 = 2025-06-30 (end of day UTC). P1 was born on 29 February 2000, P2 has
a recent probation start, P3 has no rows outside persons, P4 is born after T2.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from features.frames.builder import build_features
from features.frames.compile import completed_months, completed_years
from features.frames.definitions import FeatureSpec, load_spec
from features.ingest import ingest_delivery
from features.store.offline import OfflineStore
from riskcast.errors import NotFoundError
from tests.factories import typed_frame, write_delivery

REPO = Path(__file__).resolve().parents[3]
T1 = date(2025, 2, 28)
T2 = date(2025, 6, 30)


def ts(y: int, m: int, d: int, h: int = 12, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=UTC)


def person(pid: str, born: date, sex: str, region: str, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "person_id": pid,
        "birth_date": born,
        "sex": sex,
        "region": region,
        "district": None,
        "settlement": "urban",
        "education": None,
        "ethnicity": None,
    }
    row.update(kw)
    return row


def case(rid: str, pid: str, offence: date, registered: datetime, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "record_id": rid,
        "case_id": f"C-{rid}",
        "person_id": pid,
        "offence_date": offence,
        "registered_at": registered,
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


def admin(rid: str, pid: str, offence: date, registered: datetime, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "record_id": rid,
        "person_id": pid,
        "offence_date": offence,
        "registered_at": registered,
        "article": "130",
        "category": "traffic",
        "detected_by": "officer",
        "sanction": "warning",
        "fine_amount": None,
        "region": "AST",
    }
    row.update(kw)
    return row


def obligation(
    oid: str, pid: str, kind: str, imposed: date, due: date, **kw: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "obligation_id": oid,
        "person_id": pid,
        "kind": kind,
        "imposed_at": imposed,
        "due_at": due,
        "amount": 100.0,
        "paid_amount": 0.0,
        "paid_at": None,
        "recorded_at": ts(imposed.year, imposed.month, imposed.day),
    }
    row.update(kw)
    return row


def delivery_tables() -> dict[str, pl.DataFrame]:
    persons = [
        person("P1", date(2000, 2, 29), "M", "AST", education="secondary", ethnicity="e1"),
        person("P2", date(1990, 7, 1), "F", "ALA", settlement="rural", education="higher"),
        person("P3", date(1985, 3, 15), "M", "SHY"),
        person("P4", date(2025, 8, 1), "F", "KAR"),
    ]
    cases = [
        case(
            "c1",
            "P1",
            date(2015, 5, 10),
            ts(2015, 6, 1),
            outcome="convicted",
            outcome_at=date(2016, 1, 10),
        ),
        case(
            "c2",
            "P1",
            date(2025, 1, 15),
            ts(2025, 1, 20),
            category="violent",
            gravity="grave",
            street=True,
            outcome="convicted",
            outcome_at=date(2025, 5, 1),
        ),
        # registered after T2: invisible at T2 although the offence happened before
        case("c3", "P1", date(2025, 6, 20), ts(2025, 7, 2), category="violent"),
        case("c4", "P1", date(2025, 4, 1), ts(2025, 4, 3), category="drugs", gravity="medium"),
        # registered in the last minutes of T2: known at the end of T2
        case(
            "c5",
            "P1",
            date(2024, 12, 1),
            ts(2025, 6, 30, 23, 30),
            category="public_order",
            gravity="misdemeanour",
            outcome="terminated_exonerating",
            outcome_at=date(2025, 7, 15),
        ),
        case(
            "c6",
            "P2",
            date(2019, 3, 1),
            ts(2019, 3, 10),
            category="economic",
            gravity="medium",
            outcome="acquitted",
            outcome_at=date(2019, 12, 1),
        ),
    ]
    admins = [
        admin(
            "a1",
            "P1",
            date(2025, 3, 10),
            ts(2025, 3, 11),
            category="alcohol",
            sanction="fine",
            fine_amount=100.0,
        ),
        admin(
            "a2",
            "P1",
            date(2025, 6, 29),
            ts(2025, 6, 30, 10),
            detected_by="camera",
            sanction="fine",
            fine_amount=50.0,
        ),
        admin(
            "a3",
            "P1",
            date(2023, 12, 1),
            ts(2023, 12, 2),
            category="domestic",
            detected_by="complaint",
        ),
        admin(
            "a4", "P1", date(2024, 5, 1), ts(2024, 5, 2), category="public_order", sanction="arrest"
        ),
    ]
    obligations = [
        obligation(
            "o1",
            "P1",
            "admin_fine",
            date(2025, 3, 11),
            date(2025, 4, 10),
            paid_amount=100.0,
            paid_at=date(2025, 4, 1),
            recorded_at=ts(2025, 3, 12),
        ),
        obligation(
            "o2",
            "P1",
            "alimony",
            date(2024, 1, 1),
            date(2024, 2, 1),
            amount=500.0,
            paid_amount=500.0,
            paid_at=date(2025, 7, 10),
        ),
        obligation(
            "o3",
            "P1",
            "damages",
            date(2025, 5, 1),
            date(2025, 6, 30),
            amount=300.0,
            recorded_at=ts(2025, 5, 2),
        ),
        obligation(
            "o4",
            "P1",
            "criminal_fine",
            date(2024, 6, 1),
            date(2024, 7, 1),
            amount=200.0,
            paid_amount=50.0,
        ),
    ]
    status = [
        {
            "person_id": "P1",
            "status": "unemployed",
            "valid_from": date(2025, 1, 1),
            "valid_to": date(2025, 6, 30),
            "recorded_at": ts(2025, 1, 5),
        },
        {
            "person_id": "P1",
            "status": "social_assistance",
            "valid_from": date(2025, 7, 1),
            "valid_to": None,
            "recorded_at": ts(2025, 7, 2),
        },
        {
            "person_id": "P1",
            "status": "employed",
            "valid_from": date(2020, 1, 1),
            "valid_to": date(2024, 12, 31),
            "recorded_at": ts(2020, 1, 5),
        },
        {
            "person_id": "P2",
            "status": "homeless",
            "valid_from": date(2025, 6, 1),
            "valid_to": None,
            "recorded_at": ts(2025, 6, 10),
        },
        {
            "person_id": "P2",
            "status": "employed",
            "valid_from": date(2018, 1, 1),
            "valid_to": date(2025, 5, 31),
            "recorded_at": ts(2018, 1, 2),
        },
    ]
    releases = [
        {
            "person_id": "P1",
            "released_at": date(2016, 6, 1),
            "sentence": "imprisonment",
            "sentence_months": 12,
            "supervised_until": date(2017, 6, 1),
            "recorded_at": ts(2016, 6, 2),
        },
        {
            "person_id": "P2",
            "released_at": date(2024, 12, 31),
            "sentence": "probation",
            "sentence_months": 24,
            "supervised_until": date(2026, 12, 31),
            "recorded_at": ts(2025, 1, 2),
        },
    ]
    return {
        "persons": typed_frame("persons", persons),
        "criminal_cases": typed_frame("criminal_cases", cases),
        "admin_offences": typed_frame("admin_offences", admins),
        "obligations": typed_frame("obligations", obligations),
        "social_status": typed_frame("social_status", status),
        "releases": typed_frame("releases", releases),
    }


@pytest.fixture(scope="module")
def spec() -> FeatureSpec:
    return load_spec(REPO / "configs" / "features.yaml")


def make_golden_store(root: Path) -> OfflineStore:
    """Ingest the golden delivery into a store under ``root``."""
    report = ingest_delivery(write_delivery(root / "d1", delivery_tables()), root / "home")
    assert all(t.quarantined == 0 for t in report.tables.values()), report
    return OfflineStore(root / "home")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> OfflineStore:
    return make_golden_store(tmp_path_factory.mktemp("golden"))


@pytest.fixture(scope="module")
def rows(store: OfflineStore, spec: FeatureSpec) -> dict[tuple[str, date], dict[str, Any]]:
    frame = build_features(store, spec, [T1, T2], "all").collect(engine="streaming")
    return {(r["person_id"], r["as_of"]): r for r in frame.to_dicts()}


EXPECTED_T2: dict[str, dict[str, Any]] = {
    "P1": {
        "cases_total": 4,  # c1 c2 c4 c5; c3 registered after T2
        "cases_90d": 0,  # c4's offence on T2-90 days is just outside (T-90, T]
        "cases_365d": 3,
        "cases_1825d": 3,
        "cases_violent_365d": 1,
        "cases_grave_1825d": 1,
        "cases_street_365d": 1,
        "cases_drugs_1825d": 1,
        "case_categories_total": 4,
        "days_since_last_case": 90,  # c4, 2025-04-01
        "age_at_first_case": 15,  # c1 on 2015-05-10, born 2000-02-29
        "convictions_known": 2,  # c1, and c2 convicted on 2025-05-01
        "pending_cases_at": 2,  # c4 (no outcome), c5 (outcome after T2)
        "share_cases_exonerated": 0.0,
        "max_gravity_365d": 4.0,
        "case_rate_trend": 3.0,
        "gravity_trend": None,
        "admin_offences_365d": 2,
        "admin_officer_365d": 1,
        "admin_camera_365d": 1,
        "admin_alcohol_365d": 1,
        "admin_offences_prior_year": 2,  # a3, a4 in (T-730, T-365]
        "admin_arrests_1825d": 1,
        "days_since_last_admin": 1,
        "admin_fines_amount_365d": 150.0,
        "admin_to_criminal_escalation": 1,
        "obligations_overdue_at": 2,  # o2 (paid after T2), o4 (partly paid); o3 due on T2
        "obligations_overdue_amount": 700.0,
        "obligations_oldest_overdue_days": (T2 - date(2024, 2, 1)).days,
        "alimony_overdue_at": 1,
        "obligations_share_paid_on_time": pytest.approx(1 / 3),
        "obligations_imposed_365d": 2,
        "obligations_amount_365d": 400.0,
        "status_unemployed_at": 1,  # valid_to is the spell's last day, inclusive
        "status_social_assistance_at": 0,  # recorded after T2
        "status_employed_at": 0,
        "status_unknown_at": 0,
        "unemployed_days_at": 180,
        "months_since_release": 108,
        "under_supervision_at": 0,
        "releases_total": 1,
        "imprisonments_total": 1,
        "last_sentence_months": 12,
        "age_at": 25,
        "education_level": 2.0,
        "sex": "M",
        "ethnicity": "e1",
    },
    "P2": {
        "cases_total": 1,
        "cases_365d": 0,
        "days_since_last_case": (T2 - date(2019, 3, 1)).days,
        "share_cases_exonerated": 1.0,
        "admin_offences_365d": 0,
        "admin_to_criminal_escalation": 0,
        "obligations_overdue_at": 0,
        "obligations_share_paid_on_time": None,
        "status_homeless_at": 1,
        "status_employed_at": 0,  # the employment spell ended on 2025-05-31
        "status_unknown_at": 0,
        "months_since_release": 5,  # 2024-12-31 -> 2025-06-30: the 6th month ends on 1 July
        "under_supervision_at": 1,
        "released_365d": 1,
        "age_at": 34,  # birthday tomorrow
        "education_level": 3.0,
    },
    "P3": {
        "cases_total": 0,
        "cases_365d": 0,
        "days_since_last_case": None,
        "age_at_first_case": None,
        "pending_cases_at": 0,
        "admin_offences_365d": 0,
        "obligations_overdue_amount": 0.0,
        "status_unknown_at": 1,  # absent from social_status: status unknown
        "status_unemployed_at": 0,
        "unemployed_days_at": 0,
        "months_since_release": None,
        "releases_total": 0,
        "age_at": 40,
        "education_level": None,
        "case_rate_trend": 0.0,
        "gravity_trend": None,
    },
}

EXPECTED_T1: dict[str, dict[str, Any]] = {
    "P1": {
        "cases_total": 2,  # c1, c2
        "convictions_known": 1,
        "pending_cases_at": 1,  # c2 convicted only on 2025-05-01
        "admin_offences_365d": 1,  # a4 (2024-05-01); a1 is later
        "obligations_overdue_at": 2,  # o2, o4 (o1, o3 recorded later)
        "status_unemployed_at": 1,
        "unemployed_days_at": 58,
        "age_at": 24,  # 29 February birthday counts on 1 March
        "gravity_trend": None,  # nothing in the four years before the last one
    },
    "P2": {
        "months_since_release": 1,
        "status_homeless_at": 0,  # recorded 2025-06-10
        "status_employed_at": 1,
        "status_unknown_at": 0,
    },
}


@pytest.mark.parametrize(
    ("as_of", "pid", "name", "expected"),
    [
        (t, pid, name, value)
        for t, table in ((T2, EXPECTED_T2), (T1, EXPECTED_T1))
        for pid, values in table.items()
        for name, value in values.items()
    ],
)
def test_golden_value(
    rows: dict[tuple[str, date], dict[str, Any]], as_of: date, pid: str, name: str, expected: Any
) -> None:
    assert rows[(pid, as_of)][name] == expected


def test_one_row_per_person_known_and_born(rows: dict[tuple[str, date], dict[str, Any]]) -> None:
    assert sorted(rows) == [(p, t) for p in ("P1", "P2", "P3") for t in (T1, T2)]


def test_columns_follow_the_spec(store: OfflineStore, spec: FeatureSpec) -> None:
    frame = build_features(store, spec, [T2]).collect()
    assert frame.columns == ["person_id", "as_of", *spec.names]


@pytest.mark.parametrize(
    ("population", "expected"),
    [("all", {"P1", "P2", "P3"}), ("with_record", {"P1", "P2"}), ("released", {"P2"})],
)
def test_populations(
    store: OfflineStore, spec: FeatureSpec, population: str, expected: set[str]
) -> None:
    frame = build_features(store, spec, [T2], population).collect()
    assert set(frame["person_id"]) == expected


def test_missing_table_gives_null_not_zero(tmp_path: Path, spec: FeatureSpec) -> None:
    tables = delivery_tables()
    del tables["obligations"]
    ingest_delivery(write_delivery(tmp_path / "d", tables), tmp_path / "home")
    frame = build_features(OfflineStore(tmp_path / "home"), spec, [T2]).collect()
    p3 = frame.filter(pl.col("person_id") == "P3").row(0, named=True)
    assert p3["obligations_overdue_at"] is None
    assert p3["obligations_overdue_amount"] is None
    assert p3["cases_total"] == 0


def test_population_needs_its_table(tmp_path: Path, spec: FeatureSpec) -> None:
    tables = {"persons": delivery_tables()["persons"]}
    ingest_delivery(write_delivery(tmp_path / "d", tables), tmp_path / "home")
    with pytest.raises(NotFoundError, match="criminal_cases"):
        build_features(OfflineStore(tmp_path / "home"), spec, [T2], "with_record")


@pytest.mark.parametrize(
    ("born", "on", "years"),
    [
        (date(2000, 2, 29), date(2001, 2, 28), 0),
        (date(2000, 2, 29), date(2001, 3, 1), 1),
        (date(2000, 2, 29), date(2004, 2, 29), 4),
        (date(2000, 2, 29), date(2004, 2, 28), 3),
        (date(1990, 7, 1), date(2025, 7, 1), 35),
        (date(1990, 12, 31), date(1991, 12, 30), 0),
    ],
)
def test_completed_years(born: date, on: date, years: int) -> None:
    days = pl.DataFrame({"b": [born], "o": [on]}).select(pl.all().cast(pl.Int32))
    assert days.select(completed_years(pl.col("b"), pl.col("o"))).item() == years


@pytest.mark.parametrize(
    ("since", "on", "months"),
    [
        (date(2025, 1, 31), date(2025, 2, 28), 0),
        (date(2025, 1, 31), date(2025, 3, 1), 1),
        (date(2025, 1, 15), date(2025, 2, 15), 1),
        (date(2024, 12, 31), date(2025, 1, 31), 1),
        (date(2025, 6, 30), date(2025, 6, 30), 0),
    ],
)
def test_completed_months(since: date, on: date, months: int) -> None:
    days = pl.DataFrame({"s": [since], "o": [on]}).select(pl.all().cast(pl.Int32))
    assert days.select(completed_months(pl.col("s"), pl.col("o"))).item() == months
