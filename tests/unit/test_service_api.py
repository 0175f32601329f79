"""The service over ASGI on a tiny trained champion: auth, regions, purposes, scores, lists."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from serving.app import create_app
from tests.service_helpers import AsgiClient, RecordingLog, ServiceEnv, serve, settings_for

PURPOSE = "case_review"


@pytest.fixture(scope="module")
def client(service_env: ServiceEnv) -> Iterator[tuple[AsgiClient, RecordingLog]]:
    from serving.auth import get_access_log

    app = create_app(settings_for(service_env.home))
    log = RecordingLog()
    app.dependency_overrides[get_access_log] = lambda: log
    with serve(app) as c:
        yield c, log


def test_health_and_ready(client: tuple[AsgiClient, RecordingLog]) -> None:
    c, _ = client
    assert c.get("/healthz").json()["status"] == "ok"
    ready = c.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["model_version"]


def test_missing_or_bad_token_is_401(client: tuple[AsgiClient, RecordingLog]) -> None:
    c, _ = client
    body = {"ids": ["x"], "purpose": PURPOSE}
    assert c.post("/v1/scores", json_body=body).status_code == 401
    assert c.post("/v1/scores", json_body=body, token="rc_nope").status_code == 401


def test_auditor_cannot_score(
    client: tuple[AsgiClient, RecordingLog], service_env: ServiceEnv
) -> None:
    c, _ = client
    r = c.post(
        "/v1/scores", json_body={"ids": ["x"], "purpose": PURPOSE}, token=service_env.tokens["ada"]
    )
    assert r.status_code == 403


def test_scores_explained_and_add_up(
    client: tuple[AsgiClient, RecordingLog], service_env: ServiceEnv
) -> None:
    c, log = client
    ids = service_env.persons["AST"][:5]
    before = len(log.entries)
    r = c.post(
        "/v1/scores",
        json_body={"ids": [*ids, "no-such-person"], "purpose": PURPOSE},
        token=service_env.tokens["olga"],
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["person_id"] for x in results] == [*ids, "no-such-person"]
    assert results[-1]["status"] == "unknown" and results[-1]["probability"] is None
    for res in results[:-1]:
        assert res["status"] == "scored" and 0.0 <= res["probability"] <= 1.0
        assert res["model_version"] == service_env.model_version
        e = res["explanation"]
        total = sum(e["contributions"].values()) + e["bias"]
        assert total == pytest.approx(e["raw_score"], abs=1e-6)
        assert sum(d["contribution"] for d in e["domains"]) + e["bias"] == pytest.approx(
            e["raw_score"], abs=1e-6
        )
        assert all(x["kind"] == "dynamic" for x in e["dynamic_needs"])
        assert all(x["kind"] != "dynamic" for x in e["static_history"])
        for reason in e["top_reasons"]:
            assert reason["contribution"] > 0 and reason["sentence"]
    entry = log.entries[before]
    assert entry["actor"] == "olga" and entry["purpose"] == PURPOSE and entry["status"] == 200
    assert entry["persons"] == ids and entry["model_version"] == service_env.model_version


def test_other_region_is_403_and_logged(
    client: tuple[AsgiClient, RecordingLog], service_env: ServiceEnv
) -> None:
    c, log = client
    other = service_env.persons["SHY"][0]
    r = c.post(
        "/v1/scores",
        json_body={"ids": [service_env.persons["AST"][0], other], "purpose": PURPOSE},
        token=service_env.tokens["olga"],
    )
    assert r.status_code == 403
    assert log.entries[-1]["status"] == 403 and log.entries[-1]["persons"] == [other]


def test_too_many_ids_is_413(
    client: tuple[AsgiClient, RecordingLog], service_env: ServiceEnv
) -> None:
    c, _ = client
    r = c.post(
        "/v1/scores",
        json_body={"ids": [f"p{i}" for i in range(1001)], "purpose": PURPOSE},
        token=service_env.tokens["olga"],
    )
    assert r.status_code == 413


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ids": ["a"]}, "purpose"),
        ({"ids": ["a"], "purpose": "curiosity"}, "purpose"),
        ({"purpose": PURPOSE}, "ids"),
        ({"ids": "a", "purpose": PURPOSE}, "ids"),
    ],
)
def test_bad_body_is_422_naming_the_field(
    client: tuple[AsgiClient, RecordingLog],
    service_env: ServiceEnv,
    body: dict[str, object],
    field: str,
) -> None:
    c, _ = client
    r = c.post("/v1/scores", json_body=body, token=service_env.tokens["olga"])
    assert r.status_code == 422, r.text
    assert any(field in d["loc"] for d in r.json()["detail"])


def test_malformed_json_is_422_and_unknown_route_404(
    client: tuple[AsgiClient, RecordingLog], service_env: ServiceEnv
) -> None:
    c, _ = client
    r = c.request("POST", "/v1/nothing", token=service_env.tokens["olga"])
    assert r.status_code == 404


def test_risk_list_ranked_paginated_and_csv(
    client: tuple[AsgiClient, RecordingLog], service_env: ServiceEnv
) -> None:
    c, log = client
    token = service_env.tokens["olga"]
    params = {"region": "AST", "purpose": PURPOSE, "capacity": 30, "limit": 10, "offset": 5}
    r = c.get("/v1/risk-lists", params=params, token=token)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 30 and [x["rank"] for x in body["rows"]] == list(range(6, 16))
    probs = [x["probability"] for x in body["rows"]]
    assert probs == sorted(probs, reverse=True)
    assert log.entries[-1]["action"] == "risk-list"
    assert log.entries[-1]["persons"] == [x["person_id"] for x in body["rows"]]
    csv = c.get("/v1/risk-lists", params={**params, "format": "csv"}, token=token)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert len(csv.text.strip().splitlines()) == 11
    high = c.get("/v1/risk-lists", params={**params, "tier": ["high", "very_high"]}, token=token)
    assert all(x["tier"] in {"high", "very_high"} for x in high.json()["rows"])
    assert (
        c.get("/v1/risk-lists", params={**params, "region": "SHY"}, token=token).status_code == 403
    )
    bad = c.get("/v1/risk-lists", params={"region": "AST"}, token=token)
    assert bad.status_code == 422 and any("purpose" in d["loc"] for d in bad.json()["detail"])


def test_decisions_round_trip(
    client: tuple[AsgiClient, RecordingLog], service_env: ServiceEnv
) -> None:
    c, _ = client
    token, pid = service_env.tokens["olga"], service_env.persons["AST"][1]
    no_reason = {"person_id": pid, "action": "disagreed", "purpose": PURPOSE}
    r = c.post("/v1/decisions", json_body=no_reason, token=token)
    assert r.status_code == 422 and any("reason" in d["loc"] for d in r.json()["detail"])
    bad_measure = {"person_id": pid, "action": "referred", "measure_id": "x", "purpose": PURPOSE}
    assert c.post("/v1/decisions", json_body=bad_measure, token=token).status_code == 422
    ok = c.post("/v1/decisions", json_body={**no_reason, "reason": "knows the family"}, token=token)
    assert ok.status_code == 201, ok.text
    assert ok.json()["override"] is True
    ref = {
        "person_id": pid,
        "action": "referred",
        "measure_id": "debt_counselling",
        "purpose": PURPOSE,
    }
    assert c.post("/v1/decisions", json_body=ref, token=token).status_code == 201
    listed = c.get("/v1/decisions", token=service_env.tokens["ada"]).json()
    unit = next(u for u in listed["units"] if u["region"] == "AST")
    assert unit["overrides"] >= 1 and unit["by_action"]["referred"] >= 1
    assert any(d["reason"] == "knows the family" for d in listed["decisions"])
    other = c.get("/v1/decisions", token=service_env.tokens["oleg"]).json()
    assert all(d["region"] == "SHY" for d in other["decisions"])


def test_model_card(client: tuple[AsgiClient, RecordingLog], service_env: ServiceEnv) -> None:
    c, _ = client
    r = c.get("/v1/models/champion", token=service_env.tokens["dan"])
    assert r.status_code == 200
    assert r.json()["version"] == service_env.model_version and r.json()["features"]
