"""Auditors' endpoints (fairness reports, ledger, access log) and the Prometheus metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from tests.service_helpers import ServiceEnv, settings_for

FAKE_VERSION = "9999"


def _auth(env: ServiceEnv, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {env.tokens[name]}"}


@pytest.fixture(scope="module")
def client(service_env: ServiceEnv) -> Iterator[TestClient]:
    folder = service_env.home / "reports" / f"recidivism-risk-v{FAKE_VERSION}"
    folder.mkdir(parents=True, exist_ok=True)
    report = {
        "title": "test report",
        "model_version": FAKE_VERSION,
        "decision": {"outcome": "pass"},
    }
    (folder / "fairness-report.json").write_text(json.dumps(report), "utf-8")
    (folder / "fairness-report.html").write_text("<html><body>the report</body></html>", "utf-8")
    with TestClient(create_app(settings_for(service_env.home))) as c:
        yield c


def test_fairness_report_json_and_html(client: TestClient, service_env: ServiceEnv) -> None:
    r = client.get(f"/v1/fairness-reports/{FAKE_VERSION}", headers=_auth(service_env, "ada"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["version"] == FAKE_VERSION and body["report"]["decision"]["outcome"] == "pass"
    assert len(body["json_sha256"]) == 64 and body["html_available"]
    html = client.get(
        f"/v1/fairness-reports/{FAKE_VERSION}",
        params={"format": "html"},
        headers=_auth(service_env, "root"),
    )
    assert html.status_code == 200 and "the report" in html.text
    assert html.headers["content-type"].startswith("text/html")


def test_fairness_report_refusals(client: TestClient, service_env: ServiceEnv) -> None:
    path = f"/v1/fairness-reports/{FAKE_VERSION}"
    assert client.get(path).status_code == 401
    assert client.get(path, headers=_auth(service_env, "olga")).status_code == 403
    assert client.get(path, headers=_auth(service_env, "dan")).status_code == 403
    for unknown in ("424242", "../../etc", "v1"):
        r = client.get(f"/v1/fairness-reports/{unknown}", headers=_auth(service_env, "ada"))
        assert r.status_code == 404, (unknown, r.status_code)


def test_ledger_for_auditors_only(client: TestClient, service_env: ServiceEnv) -> None:
    r = client.get("/v1/ledger", headers=_auth(service_env, "ada"))
    assert r.status_code == 200, r.text
    assert r.json()["verification"]["ok"] is True
    assert client.get("/v1/ledger", headers=_auth(service_env, "olga")).status_code == 403


def test_access_log_filters_and_verification(client: TestClient, service_env: ServiceEnv) -> None:
    ids = service_env.persons["AST"][:2]
    scored = client.post(
        "/v1/scores",
        json={"ids": ids, "purpose": "case_review"},
        headers=_auth(service_env, "olga"),
    )
    assert scored.status_code == 200, scored.text
    r = client.get(
        "/v1/access-log",
        params={"actor": "olga", "person": ids[0], "limit": 1},
        headers=_auth(service_env, "ada"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["verification"]["ok"] is True and body["verification"]["entries"] >= 1
    [entry] = body["entries"]
    assert entry["actor"] == "olga" and ids[0] in entry["persons"]
    assert entry["purpose"] == "case_review" and entry["status"] == 200
    future = client.get(
        "/v1/access-log", params={"since": "2999-01-01T00:00:00"}, headers=_auth(service_env, "ada")
    )
    assert future.status_code == 200 and future.json()["entries"] == []
    assert client.get("/v1/access-log", headers=_auth(service_env, "olga")).status_code == 403
    bad = client.get("/v1/access-log", params={"limit": 0}, headers=_auth(service_env, "ada"))
    assert bad.status_code == 422


def test_metrics(client: TestClient, service_env: ServiceEnv) -> None:
    ids = service_env.persons["AST"][:3]
    client.post(
        "/v1/scores",
        json={"ids": ids, "purpose": "case_review"},
        headers=_auth(service_env, "olga"),
    )
    client.get(f"/v1/fairness-reports/{FAKE_VERSION}", headers=_auth(service_env, "ada"))
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'route="/v1/fairness-reports/{version}"' in text
    assert f"/v1/fairness-reports/{FAKE_VERSION}" not in text  # templates, never raw paths
    assert 'riskcast_http_requests_total{method="POST",route="/v1/scores",status="200"}' in text
    assert "riskcast_http_request_duration_seconds_bucket" in text
    served = [ln for ln in text.splitlines() if ln.startswith("riskcast_scores_served_total")]
    assert served and float(served[0].split()[-1]) >= 3
    assert f'version="{service_env.model_version}"' in text
    assert "riskcast_model_info{" in text


def test_two_apps_do_not_collide(service_env: ServiceEnv) -> None:
    first = create_app(settings_for(service_env.home))
    second = create_app(settings_for(service_env.home))
    with TestClient(first) as a, TestClient(second) as b:
        a.get("/healthz")
        a.get("/healthz")
        count = 'riskcast_http_requests_total{method="GET",route="/healthz",status="200"}'
        assert f"{count} 2.0" in a.get("/metrics").text
        assert f"{count} 2.0" not in b.get("/metrics").text
