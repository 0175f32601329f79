"""Bad input (issue 5, section 6): the OpenAPI schema fuzzed by schemathesis, and one test per rule.

The fuzzing is bounded and deterministic (fixed seed, derandomized, no example database, at most
``MAX_EXAMPLES`` generated cases per operation on top of schemathesis' coverage cases). Every
response must pass `not_a_server_error` (no 5xx, ever) and conform to the schema: documented
status code, content type and body.

How it runs:

- The schema is the app's own ``openapi()``, taken at import time (building it needs no
  lifespan), so that schemathesis can make one test per operation;
  `test_served_openapi_is_the_fuzzed_one` checks that ``/openapi.json`` serves the same document.
  (``schemathesis.pytest.from_fixture``, which would load it from a fixture, fails on pytest 9:
  it sets ``Function._nodeid``, which pytest no longer has.)
- Requests go in-process to an app of their own (`schemathesis.openapi` ASGI transport) on a
  *copy* of the session's service home, so the decisions, access-log entries and stop switch
  the fuzzing writes never reach the other tests.
- Each operation is called with the tokens of the roles that use it (``USERS``), e.g. scores as
  the officer, the audit endpoints as the auditor, the stop switch as the admin; schemathesis'
  coverage phase also sends them without the token. Operations added later run as every role.
- Random person ids and regions are all unknown or not the officer's, which would keep the
  fuzzing away from the scoring code; `steer` replaces part of them (deterministically, by the
  generated value) with the officer's region and real person ids.
- Part of the generated JSON bodies get hostile text (`poison`, chosen by the generated value):
  lone surrogates (``"\\ud800"`` is valid JSON, but not Unicode), NUL characters and overlong
  strings, in a field or as a key. They must be 422s naming the field, never a 500.
- ``POST /v1/admin/stop`` is fuzzed like the rest: after each call that stopped scoring, the
  switch is turned off again at once, so no other case ever sees a stopped service (which would
  answer 503, correctly, and fail `not_a_server_error`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from serving.access_log import AccessLog, AccessLogEntry
from serving.api.deps import get_access_log
from serving.app import create_app
from serving.db import open_engine, set_stop
from serving.places.store import HotspotStore
from tests.hostile_text import HOSTILE
from tests.service_helpers import RecordingLog, ServiceEnv, copy_home, serve, settings_for
from tests.ui_helpers import login
from tests.unit.serving.test_hotspots_data import synthetic_forecast

MAX_EXAMPLES = 25
CONFIG: dict[str, Any] = {
    "seed": 20260605,
    "generation": {"deterministic": True, "max-examples": MAX_EXAMPLES, "database": "none"},
    "phases": {"stateful": {"enabled": False}},
    "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
OFFICER, AUDITOR, ADMIN, SCIENTIST = "olga", "ada", "root", "dan"
REGION = "AST"  # olga's region
USERS: dict[tuple[str, str], list[str | None]] = {
    ("GET", "/healthz"): [None],
    ("GET", "/readyz"): [None],
    ("GET", "/metrics"): [None],
    ("POST", "/v1/scores"): [OFFICER],
    ("GET", "/v1/risk-lists"): [OFFICER],
    ("POST", "/v1/decisions"): [OFFICER],
    ("GET", "/v1/decisions"): [OFFICER, AUDITOR],
    ("GET", "/v1/models/champion"): [SCIENTIST],
    ("GET", "/v1/admin/stop"): [ADMIN],
    ("POST", "/v1/admin/stop"): [ADMIN],
    ("POST", "/v1/admin/resume"): [ADMIN],
    ("GET", "/v1/admin/users"): [ADMIN],
    ("POST", "/v1/admin/users"): [ADMIN],
    ("POST", "/v1/admin/users/{name}/revoke"): [ADMIN],
    ("POST", "/v1/admin/erasures"): [ADMIN],
    ("GET", "/v1/fairness-reports/{version}"): [AUDITOR],
    ("GET", "/v1/ledger"): [AUDITOR],
    ("GET", "/v1/access-log"): [AUDITOR, ADMIN],
    ("POST", "/v1/audit/evidence-packs"): [AUDITOR],
    ("GET", "/v1/audit/evidence-packs"): [AUDITOR, ADMIN],
    ("GET", "/v1/audit/evidence-packs/{pack_id}/files/{path}"): [AUDITOR],
    ("GET", "/v1/audit/evidence-packs/{pack_id}/zip"): [AUDITOR],
    ("GET", "/v1/hotspots"): [OFFICER],
}
EVERY_ROLE: list[str | None] = [OFFICER, AUDITOR, ADMIN]

SPEC: dict[str, Any] = create_app(settings_for(Path("unused-home"))).openapi()
schema = schemathesis.openapi.from_dict(SPEC, config=schemathesis.Config.from_dict(CONFIG))


@pytest.fixture(scope="module")
def home(service_env: ServiceEnv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the service home: what these tests write stays here."""
    copy = tmp_path_factory.mktemp("bad-input") / "home"
    copy_home(service_env.home, copy)
    # A places forecast for the officer's region, so that /v1/hotspots is fuzzed past its 503.
    engine = open_engine(settings_for(copy).effective_database_url)
    try:
        HotspotStore(engine).materialize(synthetic_forecast(regions=(REGION, "SHY")))
    finally:
        engine.dispose()
    return copy


@pytest.fixture(scope="module")
def fuzz_app(home: Path) -> Iterator[FastAPI]:
    """An app whose lifespan schemathesis' ASGI transport runs (until the module is done)."""
    yield create_app(settings_for(home))
    schemathesis_asgi.shutdown_lifespans()


def steer(case: schemathesis.Case, env: ServiceEnv) -> None:
    """Point part of the generated cases at data that exists: the officer's region instead of a
    random one, real person ids instead of random ones. Chosen by the generated value, so the
    run stays deterministic and both kinds are sent."""
    known = env.persons[REGION]
    query, body = case.query, case.body
    region = query.get("region") if isinstance(query, dict) else None
    if isinstance(query, dict) and isinstance(region, str) and len(region) % 3:
        query["region"] = REGION
    if not isinstance(body, dict):
        return
    ids = body.get("ids")
    if isinstance(ids, list):
        body["ids"] = [
            known[i % len(known)] if i % 2 == 0 and isinstance(x, str) else x
            for i, x in enumerate(ids)
        ]
    person = body.get("person_id")
    if isinstance(person, str) and len(person) % 3:
        body["person_id"] = known[len(person) % len(known)]


def poison(case: schemathesis.Case) -> None:
    """Put hostile text into about a third of the JSON bodies: into one string field (or list
    item), or as an extra key when there is none. Chosen by the generated body, so the run stays
    deterministic; the other cases keep exercising valid requests."""
    body = case.body
    if not isinstance(body, dict):
        return
    seed = len(json.dumps(body))
    if seed % 3:
        return
    hostile = HOSTILE[seed // 3 % len(HOSTILE)]
    slots: list[tuple[dict[str, Any] | list[Any], Any]] = []
    for key, value in body.items():
        if isinstance(value, str):
            slots.append((body, key))
        elif isinstance(value, list):
            slots.extend((value, i) for i, item in enumerate(value) if isinstance(item, str))
    if not slots:
        body[hostile[:64]] = "extra"
        return
    container, where = slots[seed % len(slots)]
    container[where] = hostile


@schema.parametrize()
def test_no_server_errors_and_responses_match_the_schema(
    case: schemathesis.Case, fuzz_app: FastAPI, service_env: ServiceEnv
) -> None:
    users = USERS.get((case.method.upper(), case.operation.path), EVERY_ROLE)
    if OFFICER in users:
        steer(case, service_env)
    poison(case)
    for user in users:
        headers = {} if user is None else {"Authorization": f"Bearer {service_env.tokens[user]}"}
        response = case.call(app=fuzz_app, headers=headers)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        finally:
            stopped = case.operation.path == "/v1/admin/stop" and case.method.upper() == "POST"
            if stopped and response.status_code == 200:
                set_stop(fuzz_app.state.riskcast.engine, stopped=False, by="fuzz", reason="")


def test_every_operation_has_a_role_plan() -> None:
    """A new operation would be fuzzed as every role; name the roles that use it instead."""
    operations = {(m.upper(), path) for path, ops in SPEC["paths"].items() for m in ops}
    assert operations == set(USERS)


# ---- the OpenAPI document is complete --------------------------------------------------------
def test_openapi_documents_every_error_answer() -> None:
    for path, operations in SPEC["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            where = f"{method.upper()} {path}"
            if operation.get("security"):
                assert "401" in responses, where
                assert "503" in responses, where  # the service is starting, a store is down
            if operation.get("requestBody") or operation.get("parameters"):
                assert "422" in responses, where
            for code, response in responses.items():
                assert response.get("description"), (where, code)
                if code[0] in "45":
                    content = response["content"]["application/json"]["schema"]
                    assert content.get("$ref", "").endswith(
                        ("ErrorResponse", "ValidationError")
                    ) or (code == "503" and content["$ref"].endswith("ServiceStatus")), (
                        where,
                        code,
                        content,
                    )


def test_openapi_lists_the_configured_purposes() -> None:
    purposes = settings_for(Path("unused-home")).purposes
    components = SPEC["components"]["schemas"]
    for name in ("ScoreRequest", "DecisionRequest"):
        assert components[name]["properties"]["purpose"]["enum"] == purposes
    [param] = [
        p for p in SPEC["paths"]["/v1/risk-lists"]["get"]["parameters"] if p["name"] == "purpose"
    ]
    assert param["schema"]["enum"] == purposes


# ---- section 6, rule by rule (what serving/test_service_api.py does not cover already) ----
@pytest.fixture(scope="module")
def client(home: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(home))) as c:
        yield c


def auth(env: ServiceEnv, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {env.tokens[name]}"}


def last_entry(c: TestClient) -> AccessLogEntry:
    log: AccessLog = c.app.state.riskcast.access_log  # type: ignore[attr-defined]
    return log.entries(limit=1)[-1]


def locs(reply: Any) -> list[list[str | int]]:
    return [d["loc"] for d in reply.json()["detail"]]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (b'{"ids": ["a"], "purpose": ', ["body", 26]),  # cut short
        (b'{"ids": ["\xe9"]}', ["body"]),  # not UTF-8 (FastAPI alone answers 400)
        (b"[" * 100_000, ["body"]),  # nested too deep to parse (FastAPI alone answers 400)
    ],
)
def test_undecodable_json_is_422_naming_the_body(
    client: TestClient, service_env: ServiceEnv, body: bytes, loc: list[str | int]
) -> None:
    for path in ("/v1/scores", "/v1/decisions", "/v1/admin/stop"):
        r = client.post(
            path,
            content=body,
            headers={**auth(service_env, OFFICER), "Content-Type": "application/json"},
        )
        assert r.status_code == 422, (path, r.status_code, r.text)
        assert locs(r) == [loc], path


@pytest.mark.parametrize(
    ("path", "user", "body", "loc"),
    [
        ("/v1/decisions", OFFICER, {"person_id": "p", "action": "maybe"}, ["body", "action"]),
        (
            "/v1/decisions",
            OFFICER,
            {"action": "contacted", "purpose": "case_review"},
            ["body", "person_id"],
        ),
        (
            "/v1/decisions",
            OFFICER,
            {"person_id": "p", "action": "contacted", "purpose": "case_review", "x": 1},
            ["body", "x"],
        ),
        (
            "/v1/decisions",
            OFFICER,
            {"person_id": "p", "action": "contacted", "purpose": "fun"},
            ["body", "purpose"],
        ),
        ("/v1/scores", OFFICER, {"ids": [" "], "purpose": "case_review"}, ["body", "ids", 0]),
        ("/v1/scores", OFFICER, {"ids": ["x" * 65], "purpose": "case_review"}, ["body", "ids", 0]),
        ("/v1/admin/stop", ADMIN, {}, ["body", "reason"]),
        # NUL characters: PostgreSQL refuses them in text (was a 500 there)
        ("/v1/admin/stop", ADMIN, {"reason": "drift\x00"}, ["body", "reason"]),
        ("/v1/scores", OFFICER, {"ids": ["p\x00"], "purpose": "case_review"}, ["body", "ids", 0]),
        (
            "/v1/decisions",
            OFFICER,
            {"person_id": "p", "action": "disagreed", "reason": "\x00", "purpose": "case_review"},
            ["body", "reason"],
        ),
    ],
)
def test_malformed_bodies_are_422_naming_the_field(
    client: TestClient,
    service_env: ServiceEnv,
    path: str,
    user: str,
    body: dict[str, Any],
    loc: list[str | int],
) -> None:
    r = client.post(path, json=body, headers=auth(service_env, user))
    assert r.status_code == 422, r.text
    assert loc in locs(r)


@pytest.mark.parametrize(
    ("path", "user", "params", "loc"),
    [
        ("/v1/decisions", AUDITOR, {"limit": "many"}, ["query", "limit"]),
        ("/v1/decisions", AUDITOR, {"limit": 0}, ["query", "limit"]),
        ("/v1/decisions", AUDITOR, {"region": "A\x00"}, ["query", "region"]),
        ("/v1/access-log", AUDITOR, {"actor": "\x00"}, ["query", "actor"]),
        ("/v1/access-log", AUDITOR, {"person": "p\x00"}, ["query", "person"]),
        ("/v1/access-log", AUDITOR, {"since": "yesterday"}, ["query", "since"]),
        # in range as written, out of range in UTC (was a 500: OverflowError)
        ("/v1/access-log", AUDITOR, {"since": "0001-01-01T00:00:00+05:00"}, ["query", "since"]),
        ("/v1/access-log", AUDITOR, {"since": "9999-12-31T23:59:59-05:00"}, ["query", "since"]),
        (
            "/v1/risk-lists",
            OFFICER,
            {"region": REGION, "purpose": "case_review", "offset": -1},
            ["query", "offset"],
        ),
        (
            "/v1/risk-lists",
            OFFICER,
            {"region": REGION, "purpose": "case_review", "tier": "x"},
            ["query", "tier"],
        ),
    ],
)
def test_bad_query_parameters_are_422_naming_them(
    client: TestClient,
    service_env: ServiceEnv,
    path: str,
    user: str,
    params: dict[str, Any],
    loc: list[str | int],
) -> None:
    r = client.get(path, params=params, headers=auth(service_env, user))
    assert r.status_code == 422, r.text
    assert loc in locs(r)


def test_a_thousand_ids_are_served_one_more_is_413(
    client: TestClient, service_env: ServiceEnv
) -> None:
    known = service_env.persons[REGION]
    ids = [*known, *(f"unknown-{i}" for i in range(1000 - len(known)))]
    ok = client.post(
        "/v1/scores",
        json={"ids": ids, "purpose": "case_review"},
        headers=auth(service_env, OFFICER),
    )
    assert ok.status_code == 200, ok.text
    assert len(ok.json()["results"]) == 1000
    too_many = client.post(
        "/v1/scores",
        json={"ids": [*ids, "one-more"], "purpose": "case_review"},
        headers=auth(service_env, OFFICER),
    )
    assert too_many.status_code == 413 and "1001" in too_many.json()["detail"]


def test_a_huge_risk_list_offset_is_422(client: TestClient, service_env: ServiceEnv) -> None:
    r = client.get(
        "/v1/risk-lists",
        params={"region": REGION, "purpose": "case_review", "offset": 2**63},
        headers=auth(service_env, OFFICER),
    )
    assert r.status_code == 422 and ["query", "offset"] in locs(r)


SECURED = [
    (method.upper(), path.replace("{version}", "1"))
    for path, operations in SPEC["paths"].items()
    for method, operation in operations.items()
    if operation.get("security")
]


@pytest.mark.parametrize(("method", "path"), SECURED)
def test_every_secured_operation_is_401_without_a_valid_token(
    client: TestClient, home: Path, method: str, path: str
) -> None:
    from serving.users import Role

    users = client.app.state.riskcast.users  # type: ignore[attr-defined]
    name = f"revoked-{method}-{path}".replace("/", "_")
    _, revoked = users.add(name, Role.admin)
    users.revoke(name)
    for headers in (
        {},
        {"Authorization": "Bearer rc_not-a-token"},
        {"Authorization": f"Basic {revoked}"},
        {"Authorization": f"Bearer {revoked}"},
    ):
        r = client.request(method, path, headers=headers, json={})
        assert r.status_code == 401, (headers, r.status_code, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["detail"] == "missing or invalid bearer token"


def test_unknown_routes_and_persons_are_404(client: TestClient, service_env: ServiceEnv) -> None:
    for headers in ({}, auth(service_env, OFFICER)):
        for method in ("GET", "POST"):
            r = client.request(method, "/v1/nothing-here", headers=headers)
            assert r.status_code == 404 and r.json() == {"detail": "Not Found"}
    r = client.post(
        "/v1/decisions",
        json={"person_id": "no-such-person", "action": "contacted", "purpose": "case_review"},
        headers=auth(service_env, OFFICER),
    )
    assert r.status_code == 404 and "no-such-person" in r.json()["detail"]


def test_another_regions_person_is_404_like_an_unknown_one_and_logged_403_for_decisions(
    client: TestClient, service_env: ServiceEnv
) -> None:
    other = service_env.persons["SHY"][0]
    body = {"person_id": other, "action": "contacted", "purpose": "case_review"}
    r = client.post("/v1/decisions", json=body, headers=auth(service_env, OFFICER))
    assert r.status_code == 404
    entry = last_entry(client)
    assert (entry.actor, entry.action, entry.persons, entry.status) == (
        OFFICER,
        "decision",
        [other],
        403,
    )
    listing = client.get(
        "/v1/decisions", params={"region": "SHY"}, headers=auth(service_env, OFFICER)
    )
    assert listing.status_code == 403
    entry = last_entry(client)
    assert (entry.action, entry.persons, entry.status) == ("decisions", ["region:SHY"], 403)
    assert entry.purpose == "oversight"


def test_a_database_outage_is_503_not_500(client: TestClient, service_env: ServiceEnv) -> None:
    import sqlalchemy as sa

    state = client.app.state.riskcast  # type: ignore[attr-defined]
    broken = sa.create_engine(f"sqlite:///{Path('/nonexistent-dir/for/sure/x.sqlite')}")
    working = state.users.engine
    state.users.engine = broken
    try:
        r = client.get("/v1/models/champion", headers=auth(service_env, SCIENTIST))
    finally:
        state.users.engine = working
        broken.dispose()
    assert r.status_code == 503 and r.json()["error"] == "StoreError"


# ---- reading the access log and the decisions is itself logged ---------------------------------
def test_reading_the_access_log_is_logged(client: TestClient, service_env: ServiceEnv) -> None:
    person = service_env.persons[REGION][0]
    read = client.post(
        "/v1/scores",
        json={"ids": [person], "purpose": "case_review"},
        headers=auth(service_env, OFFICER),
    )
    assert read.status_code == 200
    r = client.get(
        "/v1/access-log",
        params={"person": person, "limit": 5, "since": "2000-01-01"},
        headers=auth(service_env, AUDITOR),
    )
    assert r.status_code == 200, r.text
    returned = r.json()["entries"]
    assert returned and returned[-1]["actor"] == OFFICER
    entry = last_entry(client)
    assert entry.seq > returned[-1]["seq"]  # appended after the answer was taken
    assert (entry.actor, entry.role, entry.purpose, entry.action, entry.status) == (
        AUDITOR,
        "auditor",
        "audit",
        "access-log",
        200,
    )
    assert entry.persons == [person]
    assert entry.params == {
        "actor": None,
        "person": "persons[0]",  # the person only in persons (a pseudonym, erasable)
        "since": "2000-01-01T00:00:00+00:00",
        "limit": 5,
        "entries": len(returned),
        "through_seq": returned[-1]["seq"],
    }
    unfiltered = client.get("/v1/access-log", headers=auth(service_env, ADMIN))
    assert unfiltered.status_code == 200
    entry = last_entry(client)
    assert (entry.actor, entry.role, entry.persons) == (ADMIN, "admin", [])
    assert entry.params["through_seq"] == unfiltered.json()["entries"][-1]["seq"]
    # the auditor's read is now in the log, and the log still verifies
    assert unfiltered.json()["entries"][-1]["actor"] == AUDITOR
    assert unfiltered.json()["verification"]["ok"] is True


def test_listing_decisions_is_logged_with_the_persons_listed(
    client: TestClient, service_env: ServiceEnv
) -> None:
    person = service_env.persons[REGION][2]
    done = client.post(
        "/v1/decisions",
        json={"person_id": person, "action": "contacted", "purpose": "case_review"},
        headers=auth(service_env, OFFICER),
    )
    assert done.status_code == 201, done.text
    for user, role in ((AUDITOR, "auditor"), (OFFICER, "officer")):
        r = client.get("/v1/decisions", params={"limit": 3}, headers=auth(service_env, user))
        assert r.status_code == 200, r.text
        listed = [d["person_id"] for d in r.json()["decisions"]]
        assert person in listed
        # read back from SQLite, the times are still UTC (they came back naive before)
        assert all(d["recorded_at"].endswith("Z") for d in r.json()["decisions"])
        entry = last_entry(client)
        assert (entry.actor, entry.role, entry.purpose, entry.action, entry.status) == (
            user,
            role,
            "oversight",
            "decisions",
            200,
        )
        assert entry.persons == list(dict.fromkeys(listed))
        assert entry.params == {
            "region": None,
            "overrides_only": False,
            "limit": 3,
            "listed": len(listed),
        }


def test_decision_listing_needs_the_access_log(home: Path, service_env: ServiceEnv) -> None:
    """Person-level reads are refused (503) rather than served unlogged."""
    app = create_app(settings_for(home))
    with serve(app) as c:
        app.state.riskcast.access_log = None
        for path, user in (("/v1/decisions", AUDITOR), ("/v1/access-log", AUDITOR)):
            r = c.get(path, token=service_env.tokens[user])
            assert r.status_code == 503, (path, r.text)


def test_the_audit_page_logs_its_reads(home: Path, service_env: ServiceEnv) -> None:
    app = create_app(settings_for(home))
    log = RecordingLog()
    app.dependency_overrides[get_access_log] = lambda: log
    with TestClient(app) as c:
        login(c, service_env.tokens[AUDITOR])
        page = c.get("/ui/audit", params={"person": service_env.persons[REGION][0]})
        assert page.status_code == 200, page.text
    assert [(e["actor"], e["action"], e["purpose"]) for e in log.entries] == [
        (AUDITOR, "access-log", "audit"),
        (AUDITOR, "decisions", "oversight"),
    ]
