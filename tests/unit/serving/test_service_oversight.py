"""503 without a champion or after the stop switch; settings refuse production defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from riskcast.errors import ConfigError
from serving.api.deps import get_access_log
from serving.app import create_app
from serving.explain import sentence
from tests.service_helpers import RecordingLog, ServiceEnv, serve, settings_for
from tests.ui_helpers import private_home
from training.model import FeatureInfo


def test_stop_switch_withdraws_the_model(service_env: ServiceEnv) -> None:
    app = create_app(settings_for(service_env.home))
    app.dependency_overrides[get_access_log] = lambda: RecordingLog()
    body = {"ids": service_env.persons["AST"][:1], "purpose": "case_review"}
    with serve(app) as c:
        admin, officer = service_env.tokens["root"], service_env.tokens["olga"]
        assert c.post("/v1/admin/stop", json_body={"reason": "x"}, token=officer).status_code == 403
        r = c.post("/v1/admin/stop", json_body={"reason": "audit found drift"}, token=admin)
        assert r.status_code == 200 and r.json()["stopped"]
        try:
            stopped = c.post("/v1/scores", json_body=body, token=officer)
            assert stopped.status_code == 503 and "audit found drift" in stopped.json()["detail"]
            assert c.get("/healthz").status_code == 200
            assert c.get("/readyz").status_code == 503
        finally:
            assert c.post("/v1/admin/resume", token=admin).status_code == 200
        assert c.post("/v1/scores", json_body=body, token=officer).status_code == 200


def test_no_champion_is_503_with_a_clear_message(service_env: ServiceEnv) -> None:
    app = create_app(settings_for(service_env.home, model_alias="nobody"))
    app.dependency_overrides[get_access_log] = lambda: RecordingLog()
    with serve(app) as c:
        r = c.post(
            "/v1/scores",
            json_body={"ids": ["a"], "purpose": "case_review"},
            token=service_env.tokens["olga"],
        )
        assert r.status_code == 503
        assert "alias 'nobody'" in r.json()["detail"]
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 503


def test_revoked_token_is_401(tmp_path: Path) -> None:
    from serving.db import open_engine
    from serving.users import Role, UserStore

    store = UserStore(open_engine(f"sqlite:///{tmp_path / 'u.sqlite'}"), "pepper")
    user, token = store.add("eve", Role.officer, ["AST"])
    assert store.authenticate(token) == user
    store.revoke("eve")
    assert store.authenticate(token) is None
    assert token not in (tmp_path / "u.sqlite").read_bytes().decode("latin-1")


def test_production_refuses_default_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from serving.settings import load_serving_settings

    monkeypatch.setenv("RISKCAST_MODE", "production")
    monkeypatch.delenv("RISKCAST_TOKEN_PEPPER", raising=False)
    monkeypatch.setenv("RISKCAST_CHAIN_KEY", "a-long-production-chain-key")
    with pytest.raises(ConfigError, match="RISKCAST_TOKEN_PEPPER"):
        load_serving_settings()
    monkeypatch.setenv("RISKCAST_TOKEN_PEPPER", "a-long-production-secret")
    monkeypatch.delenv("RISKCAST_CHAIN_KEY", raising=False)
    with pytest.raises(ConfigError, match="RISKCAST_CHAIN_KEY"):
        load_serving_settings()
    monkeypatch.setenv("RISKCAST_CHAIN_KEY", "a-long-production-chain-key")
    assert load_serving_settings().mode == "production"


def test_sentences_cite_the_register_facts() -> None:
    info = FeatureInfo(
        "admin_public_order_365d",
        "criminal_history",
        "static",
        1,
        "public-order administrative offences in the last 365 days",
    )
    assert sentence(info, 3.0) == "3 public-order administrative offences in the last 12 months"
    flag = FeatureInfo(
        "status_homeless_at",
        "employment_social",
        "dynamic",
        1,
        "1 if a homelessness spell covers T",
    )
    assert sentence(flag, 1.0) == "Yes: a homelessness spell covers T"


def test_reads_are_appended_to_the_real_access_log(service_env: ServiceEnv) -> None:
    from serving.access_log import open_access_log

    app = create_app(settings_for(service_env.home))
    ids = service_env.persons["AST"][:2]
    other = service_env.persons["SHY"][:1]
    with serve(app) as c:
        token = service_env.tokens["olga"]
        ok = c.post("/v1/scores", json_body={"ids": ids, "purpose": "case_review"}, token=token)
        assert ok.status_code == 200, ok.text
        denied = c.post(
            "/v1/scores", json_body={"ids": other, "purpose": "case_review"}, token=token
        )
        assert denied.status_code == 200  # answered like an unknown id ...
        assert denied.json()["results"][0]["status"] == "unknown"
    log = open_access_log(settings_for(service_env.home).store_settings())
    try:
        entries = log.entries(actor="olga")
        # ... and logged as refused for auditors, beside the (empty) answered read
        assert [(e.persons, e.status) for e in entries[-3:]] == [
            (ids, 200),
            (other, 403),
            ([], 200),
        ]
        assert entries[-1].purpose == "case_review"
        assert entries[-2].model_version == service_env.model_version
        assert log.verify().ok
    finally:
        log.dispose()


def test_a_stopped_model_scores_no_decision_also_after_a_restart(
    service_env: ServiceEnv, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """While scoring is stopped a decision is still recorded (oversight goes on), but with no
    probability, tier nor model version: the stopped model produces no score on any path."""
    home = private_home(service_env, tmp_path_factory, "stopped")
    log = RecordingLog()
    admin, officer = service_env.tokens["root"], service_env.tokens["olga"]
    pid = service_env.persons["AST"][0]
    decision = {"person_id": pid, "action": "contacted", "purpose": "case_review"}

    def app() -> object:
        made = create_app(settings_for(home))
        made.dependency_overrides[get_access_log] = lambda: log
        return made

    with serve(app()) as c:  # type: ignore[arg-type]
        scored = c.post("/v1/decisions", json_body=decision, token=officer)
        assert scored.status_code == 201 and scored.json()["probability"] is not None
        r = c.post("/v1/admin/stop", json_body={"reason": "audit found drift"}, token=admin)
        assert r.status_code == 200
    try:
        for _ in range(2):  # the running service, then a restarted one
            with serve(app()) as c:  # type: ignore[arg-type]
                r = c.post("/v1/decisions", json_body=decision, token=officer)
                assert r.status_code == 201, r.text
                body = r.json()
                assert body["probability"] is None and body["tier"] is None
                assert body["model_version"] is None
                assert "scoring is stopped: audit found drift" in body["score_withheld"]
                assert log.entries[-1]["model_version"] is None
                disagree = {**decision, "action": "disagreed", "reason": "knows the family"}
                no_score = c.post("/v1/decisions", json_body=disagree, token=officer)
                assert no_score.status_code == 409 and "needs a score" in no_score.text
                outside = {**decision, "person_id": service_env.outside["AST"][0]}
                refused = c.post("/v1/decisions", json_body=outside, token=officer)
                assert refused.status_code == 409 and "outside the model's population" in (
                    refused.text
                )
                assert c.post("/v1/scores", json_body={"ids": [pid], "purpose": "case_review"},
                              token=officer).status_code == 503  # fmt: skip
    finally:
        with serve(app()) as c:  # type: ignore[arg-type]
            assert c.post("/v1/admin/resume", token=admin).status_code == 200


def test_decisions_about_persons_outside_the_population_or_region_are_refused(
    service_env: ServiceEnv, tmp_path_factory: pytest.TempPathFactory
) -> None:
    log = RecordingLog()
    made = create_app(settings_for(private_home(service_env, tmp_path_factory, "refused")))
    made.dependency_overrides[get_access_log] = lambda: log
    officer = service_env.tokens["olga"]

    def post(pid: str) -> tuple[int, dict[str, object]]:
        body = {"person_id": pid, "action": "contacted", "purpose": "case_review"}
        r = c.post("/v1/decisions", json_body=body, token=officer)
        return r.status_code, r.json()

    with serve(made) as c:
        outside = service_env.outside["AST"][0]
        code, body = post(outside)
        assert code == 409 and "outside the model's population" in str(body["detail"])
        assert log.entries[-1]["status"] == 409 and log.entries[-1]["persons"] == [outside]
        other, unknown = service_env.persons["SHY"][0], "no-such-person"
        code_other, body_other = post(other)
        assert log.entries[-1]["status"] == 403 and log.entries[-1]["persons"] == [other]
        code_unknown, body_unknown = post(unknown)
        assert code_other == code_unknown == 404
        assert str(body_other["detail"]).replace(other, "X") == str(body_unknown["detail"]).replace(
            unknown, "X"
        )
