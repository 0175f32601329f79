"""The service over ASGI on a tiny trained champion: auth, regions, purposes, scores, lists."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from serving.app import create_app
from tests.service_helpers import AsgiClient, RecordingLog, ServiceEnv, serve, settings_for

PURPOSE = "case_review"


@pytest.fixture(scope="module")
def client(service_env: ServiceEnv) -> Iterator[tuple[AsgiClient, RecordingLog]]:
    from serving.api.deps import get_access_log

    # whole-unit lists: above the default per-role list bounds (tested in test_officer_pages.py)
    wide = {"max_list_capacity": {"officer": 100_000}, "max_page_size": {"officer": 1000}}
    app = create_app(settings_for(service_env.home, **wide))
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


def test_other_region_is_answered_like_an_unknown_id_and_logged_as_refused(
    client: tuple[AsgiClient, RecordingLog], service_env: ServiceEnv
) -> None:
    """An officer cannot tell another region's id from an id that does not exist; the access
    log keeps the difference (a 403 entry naming the other region's person) for auditors."""
    c, log = client
    mine, other = service_env.persons["AST"][0], service_env.persons["SHY"][0]
    before = len(log.entries)
    r = c.post(
        "/v1/scores",
        json_body={"ids": [mine, other, "no-such-person"], "purpose": PURPOSE},
        token=service_env.tokens["olga"],
    )
    assert r.status_code == 200, r.text
    by_id = {x["person_id"]: x for x in r.json()["results"]}
    assert by_id[mine]["status"] == "scored"
    assert {k: v for k, v in by_id[other].items() if k != "person_id"} == {
        k: v for k, v in by_id["no-such-person"].items() if k != "person_id"
    }
    assert by_id[other]["status"] == "unknown" and by_id[other]["probability"] is None
    refused, served = log.entries[before:]
    assert refused["status"] == 403 and refused["persons"] == [other]
    assert served["status"] == 200 and served["persons"] == [mine]


def test_persons_outside_the_population_get_no_score_but_are_logged(
    client: tuple[AsgiClient, RecordingLog], service_env: ServiceEnv
) -> None:
    """The champion was trained on persons with a record: a person without one gets
    `outside_population` with the reason, no probability, tier nor explanation."""
    c, log = client
    outside = service_env.outside["AST"][:3]
    inside = service_env.persons["AST"][:2]
    assert outside, "the tiny delivery must hold persons without a record"
    before = len(log.entries)
    r = c.post(
        "/v1/scores",
        json_body={"ids": [*outside, *inside], "purpose": PURPOSE},
        token=service_env.tokens["olga"],
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    for res in results[: len(outside)]:
        assert res["status"] == "outside_population"
        assert res["probability"] is None and res["tier"] is None
        assert res["explanation"] is None
        assert "the model does not score persons without a record" in res["message"] or (
            "the model scores only persons aged" in res["message"]
        )
    assert [x["status"] for x in results[len(outside) :]] == ["scored", "scored"]
    entry = log.entries[before]
    assert entry["status"] == 200 and set(entry["persons"]) == {*outside, *inside}
    assert entry["params"]["outside_population"] == len(outside)


def test_risk_lists_hold_only_the_population_and_count_the_rest(
    client: tuple[AsgiClient, RecordingLog], service_env: ServiceEnv
) -> None:
    c, _ = client
    r = c.get(
        "/v1/risk-lists",
        params={"region": "AST", "purpose": PURPOSE, "capacity": 100_000, "limit": 1000},
        token=service_env.tokens["olga"],
    )
    assert r.status_code == 200, r.text
    body = r.json()
    listed = {row["person_id"] for row in body["rows"]}
    assert listed == set(service_env.persons["AST"])
    assert not listed & set(service_env.outside["AST"])
    assert body["in_population"] == len(service_env.persons["AST"])
    assert body["outside_population"] == len(service_env.outside["AST"])
    assert "population `with_record`" in body["population"]
    csv = c.get(
        "/v1/risk-lists",
        params={"region": "AST", "purpose": PURPOSE, "format": "csv"},
        token=service_env.tokens["olga"],
    )
    assert csv.status_code == 200
    head = csv.text.splitlines()[:3]
    assert all(line.startswith("# ") for line in head)
    assert f"outside it (never scored, never listed): {len(service_env.outside['AST'])}" in head[2]
    assert csv.headers["x-riskcast-outside-population"] == str(len(service_env.outside["AST"]))


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
    params = {"region": "AST", "purpose": PURPOSE, "capacity": 12, "limit": 5, "offset": 5}
    assert len(service_env.persons["AST"]) > 12
    r = c.get("/v1/risk-lists", params=params, token=token)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 12 and [x["rank"] for x in body["rows"]] == list(range(6, 11))
    probs = [x["probability"] for x in body["rows"]]
    assert probs == sorted(probs, reverse=True)
    assert log.entries[-1]["action"] == "risk-list"
    assert log.entries[-1]["persons"] == [x["person_id"] for x in body["rows"]]
    csv = c.get("/v1/risk-lists", params={**params, "format": "csv"}, token=token)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    # about (unit, population, counts, the event forecast), header, rows
    assert len(csv.text.strip().splitlines()) == 4 + 1 + 5
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
