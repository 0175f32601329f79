"""The service layer without HTTP: decisions recorded and refused, risk lists and scores equal
to the routes' JSON, refusals mapped to HTTP in one place, and the layering itself (services
know no FastAPI, pages call no route)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from riskcast.errors import ConflictError, FieldError, ForbiddenError, NotFoundError, StoreError
from serving.api.errors import error_content
from serving.app import create_app
from serving.db import decisions, set_stop
from serving.schemas import DecisionAction, DecisionRequest
from serving.services.accounts import create_account, revoke_account
from serving.services.decisions import list_decisions, person_decisions, record_decision
from serving.services.lists import risk_list, risk_list_csv
from serving.services.policy import check_purpose
from serving.services.scores import score_persons
from serving.state import ServiceState, open_state
from serving.users import Role, User
from tests.service_helpers import RecordingLog, ServiceEnv, serve, settings_for
from tests.ui_helpers import private_home

PURPOSE = "case_review"
SERVING = Path(__file__).resolve().parents[3] / "serving"


@pytest.fixture(scope="module")
def home(service_env: ServiceEnv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the service home: the decisions written here stay here."""
    return private_home(service_env, tmp_path_factory, "service-layer")


@pytest.fixture(scope="module")
def state(home: Path) -> Iterator[ServiceState]:
    """The service's state as `create_app`'s lifespan opens it, without any app."""
    opened = open_state(settings_for(home))
    try:
        assert opened.model is not None, opened.model_error
        yield opened
    finally:
        opened.close()


def user_of(state: ServiceState, service_env: ServiceEnv, name: str) -> User:
    found = state.users.authenticate(service_env.tokens[name])
    assert found is not None
    return found


def decision(person_id: str, action: str = "contacted", **kw: str | None) -> DecisionRequest:
    return DecisionRequest.model_validate(
        {"person_id": person_id, "action": action, "purpose": PURPOSE, **kw}
    )


def stored(state: ServiceState, person_id: str) -> int:
    with state.engine.connect() as conn:
        query = sa.select(sa.func.count()).where(decisions.c.person_id == person_id)
        return int(conn.execute(query).scalar_one())


# ---- decisions, without HTTP ----------------------------------------------------------------
def test_a_decision_is_recorded_with_its_score_and_its_entry(
    state: ServiceState, service_env: ServiceEnv
) -> None:
    olga = user_of(state, service_env, "olga")
    pid = service_env.persons["AST"][0]
    log = RecordingLog()
    done = record_decision(state, olga, log, decision(pid))
    assert done.id > 0 and done.person_id == pid and done.region == "AST"
    assert done.action is DecisionAction.contacted and not done.override
    assert done.probability is not None and done.tier is not None and done.score_withheld is None
    assert [e["status"] for e in log.entries] == [201]
    assert log.entries[0]["persons"] == [pid] and log.entries[0]["action"] == "decision"
    history = person_decisions(state, pid)
    assert history[0]["id"] == done.id and history[0]["officer"] == "olga"


def test_decisions_are_refused_as_riskcast_errors_and_logged(
    state: ServiceState, service_env: ServiceEnv
) -> None:
    olga = user_of(state, service_env, "olga")
    log = RecordingLog()
    other, outside = service_env.persons["SHY"][0], service_env.outside["AST"][0]
    before = {pid: stored(state, pid) for pid in (other, outside)}  # the copied home has some
    with pytest.raises(NotFoundError, match="no person with this id") as unknown:
        record_decision(state, olga, log, decision(other))
    assert unknown.value.http_status == 404
    assert [(e["status"], e["persons"]) for e in log.entries] == [(403, [other])]
    assert stored(state, other) == before[other]

    with pytest.raises(ConflictError, match="outside the model's population") as refused:
        record_decision(state, olga, log, decision(outside))
    assert refused.value.http_status == 409
    assert log.entries[-1]["status"] == 409 and log.entries[-1]["params"]["outside_population"]
    assert stored(state, outside) == before[outside]

    with pytest.raises(NotFoundError):
        record_decision(state, olga, log, decision("no-such-person"))
    assert len(log.entries) == 2  # an id that exists nowhere is no read: nothing logged


def test_a_decision_breaking_its_rules_names_the_field_and_reads_nothing(
    state: ServiceState, service_env: ServiceEnv
) -> None:
    olga = user_of(state, service_env, "olga")
    pid = service_env.persons["AST"][1]
    log = RecordingLog()
    before = stored(state, pid)  # the copied home may hold decisions of other tests
    cases = [
        (decision(pid, "disagreed"), ["body", "reason"]),
        (decision(pid, "referred"), ["body", "measure_id"]),
        (decision(pid, "contacted", measure_id="anything"), ["body", "measure_id"]),
        (decision(pid, purpose="gossip"), ["body", "purpose"]),
    ]
    for body, loc in cases:
        with pytest.raises(FieldError) as broken:
            record_decision(state, olga, log, body)
        assert broken.value.loc == loc and broken.value.http_status == 422
    assert log.entries == [] and stored(state, pid) == before


def test_while_stopped_a_decision_has_no_score_and_no_disagreement(
    state: ServiceState, service_env: ServiceEnv
) -> None:
    olga = user_of(state, service_env, "olga")
    pid = service_env.persons["AST"][2]
    log = RecordingLog()
    before = stored(state, pid)
    set_stop(state.engine, stopped=True, by="root", reason="drift")
    try:
        done = record_decision(state, olga, log, decision(pid))
        assert done.probability is None and done.model_version is None
        assert (done.score_withheld or "").startswith("scoring is stopped: drift")
        with pytest.raises(ConflictError, match="disagreeing needs a score"):
            record_decision(state, olga, log, decision(pid, "disagreed", reason="knows better"))
    finally:
        set_stop(state.engine, stopped=False, by="root", reason="")
    assert [e["status"] for e in log.entries] == [201, 409]
    assert stored(state, pid) == before + 1


def test_listing_decisions_counts_per_unit_and_refuses_another_region(
    state: ServiceState, service_env: ServiceEnv
) -> None:
    olga, ada = user_of(state, service_env, "olga"), user_of(state, service_env, "ada")
    pid = service_env.persons["AST"][3]
    record_decision(state, olga, RecordingLog(), decision(pid, "disagreed", reason="seen him"))
    log = RecordingLog()
    listing = list_decisions(state, ada, log, overrides_only=True)
    assert pid in {d.person_id for d in listing.decisions}
    assert all(d.override for d in listing.decisions)
    assert sum(u.overrides for u in listing.units) == len(listing.decisions)
    assert log.entries[-1]["purpose"] == "oversight" and pid in log.entries[-1]["persons"]
    with pytest.raises(ForbiddenError) as refused:
        list_decisions(state, olga, log, region="SHY")
    assert refused.value.http_status == 403 and log.entries[-1]["status"] == 403


# ---- scores and risk lists: the service's answer is the route's JSON ------------------------
def test_risk_list_and_scores_equal_the_routes_json(home: Path, service_env: ServiceEnv) -> None:
    app = create_app(settings_for(home))
    token = service_env.tokens["olga"]
    with serve(app) as c:
        state: ServiceState = app.state.riskcast
        assert state.model is not None
        if state.book_keeper is not None:  # the base rate (`meaning`) comes from the book
            state.book_keeper.wait(timeout=120)
        olga = user_of(state, service_env, "olga")
        query = {"region": "AST", "purpose": PURPOSE, "limit": 7, "offset": 2}
        route = c.get("/v1/risk-lists", params=query, token=token)
        assert route.status_code == 200, route.text
        log = RecordingLog()
        listing = risk_list(
            state, state.model, olga, log, region="AST", purpose=PURPOSE, limit=7, offset=2
        )
        assert listing.model_dump(mode="json") == route.json()
        assert len(listing.rows) == 7 and listing.rows[0].rank == 3
        assert log.entries[-1]["persons"] == [r.person_id for r in listing.rows]

        as_csv = c.get("/v1/risk-lists", params={**query, "format": "csv"}, token=token)
        assert as_csv.text == risk_list_csv(listing)

        ids = [*service_env.persons["AST"][:3], service_env.outside["AST"][0], "nobody"]
        body = {"ids": ids, "purpose": PURPOSE}
        scored = c.post("/v1/scores", json_body=body, token=token)
        assert scored.status_code == 200, scored.text
        answer = score_persons(state, state.model, olga, RecordingLog(), ids, PURPOSE)
        assert answer.model_dump(mode="json") == scored.json()
        assert [r.status for r in answer.results] == [
            "scored",
            "scored",
            "scored",
            "outside_population",
            "unknown",
        ]


def test_risk_list_refuses_another_region_and_unknown_tiers(
    state: ServiceState, service_env: ServiceEnv
) -> None:
    assert state.model is not None
    olga = user_of(state, service_env, "olga")
    log = RecordingLog()
    with pytest.raises(ForbiddenError):
        risk_list(state, state.model, olga, log, region="SHY", purpose=PURPOSE)
    assert [(e["status"], e["persons"]) for e in log.entries] == [(403, ["region:SHY"])]
    with pytest.raises(FieldError) as tier:
        risk_list(state, state.model, olga, log, region="AST", purpose=PURPOSE, tiers=["x"])
    assert tier.value.loc == ["query", "tier"]
    with pytest.raises(FieldError) as purpose:
        score_persons(state, state.model, olga, log, ["a"], None)
    assert purpose.value.loc == ["body", "purpose"]
    assert len(log.entries) == 1


# ---- accounts ---------------------------------------------------------------------------------
def test_accounts_follow_the_rules_without_http(state: ServiceState) -> None:
    with pytest.raises(FieldError) as no_region:
        create_account(state.users, "ivan", Role.officer, [])
    assert no_region.value.loc == ["body", "regions"]
    with pytest.raises(FieldError):
        create_account(state.users, "ivan", Role.auditor, ["AST"])
    ivan, token = create_account(state.users, "ivan", Role.officer, ["AST", "AST"])
    assert ivan.regions == ("AST",)
    assert state.users.authenticate(token) == ivan
    with pytest.raises(ConflictError, match=r"^name: "):
        create_account(state.users, "IVAN", Role.auditor, [])
    with pytest.raises(ConflictError, match="your own token"):
        revoke_account(state.users, "ivan", ivan)
    admin, _ = create_account(state.users, "boss", Role.admin, [])
    assert not revoke_account(state.users, "ivan", admin).active
    with pytest.raises(ConflictError, match="revoked already"):
        revoke_account(state.users, "ivan", admin)
    with pytest.raises(NotFoundError):
        revoke_account(state.users, "nobody-at-all", admin)


# ---- one mapping to HTTP ----------------------------------------------------------------------
def test_refusals_map_to_http_in_one_place() -> None:
    assert error_content(NotFoundError("person 'x': gone")) == {
        "detail": "person 'x': gone",
        "error": "NotFoundError",
    }
    assert error_content(ConflictError("taken")) == {"detail": "taken", "error": "ConflictError"}
    assert error_content(StoreError("down\ud800"))["detail"] == "down\\ud800"
    assert error_content(FieldError(["query", "tier"], "unknown tier")) == {
        "detail": [{"loc": ["query", "tier"], "msg": "unknown tier", "type": "value_error"}]
    }
    codes = {cls: cls("x").http_status for cls in (ForbiddenError, ConflictError, NotFoundError)}
    assert codes == {ForbiddenError: 403, ConflictError: 409, NotFoundError: 404}


def test_purpose_rule_names_the_field_it_came_from(state: ServiceState) -> None:
    assert check_purpose(state, PURPOSE, ["form", "purpose"]) == PURPOSE
    for wrong in (None, "", "curiosity"):
        with pytest.raises(FieldError) as refused:
            check_purpose(state, wrong, ["form", "purpose"])
        assert refused.value.loc == ["form", "purpose"]


# ---- the layering -------------------------------------------------------------------------------
def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_services_know_no_http_and_pages_call_no_route() -> None:
    for path in sorted((SERVING / "services").glob("*.py")):
        web = {m for m in imports_of(path) if m.split(".")[0] in ("fastapi", "starlette")}
        assert not web, f"{path.name} imports {web}"
        assert not {m for m in imports_of(path) if m.startswith(("serving.api", "serving.ui"))}
    for path in sorted((SERVING / "ui").glob("*.py")):
        routes = {m for m in imports_of(path) if m.startswith("serving.api.routes")}
        assert not routes, f"ui/{path.name} imports {routes}"


def test_the_pages_import_each_other_without_a_cycle() -> None:
    modules = {f"serving.ui.{p.stem}": p for p in (SERVING / "ui").glob("*.py")}
    graph = {name: {m for m in imports_of(p) if m in modules} for name, p in modules.items()}

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for nxt in graph[start] - seen:
            if nxt == target or reaches(nxt, target, seen | {nxt}):
                return True
        return False

    cycles = [name for name in graph if reaches(name, name, set())]
    assert not cycles, cycles
