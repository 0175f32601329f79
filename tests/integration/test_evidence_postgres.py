"""The evidence pack on PostgreSQL (issue 13, section 4): the service on a schema of its own
(ledger, access log, decisions, online store and monitoring store all there) assembles a pack
through ``POST /v1/audit/evidence-packs``; the manifest's sha256s match the files, the ledger
records the manifest's sha256, the person's export is in the access log, the monitoring plan
reads the check kept in PostgreSQL, and `ledger verify` / `access-log verify` still pass."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from fairness.monitoring.store import MonitoringStore
from serving.app import create_app
from serving.cli import build_app
from serving.db import open_engine
from serving.evidence.pack import MANIFEST, pack_problems
from serving.settings import ServingSettings
from serving.users import Role, UserStore
from tests.integration.test_service_postgres import _materialise_on_postgres, url_in
from tests.monitoring_helpers import check
from tests.service_helpers import ServiceEnv, environment, service_env
from tests.ui_helpers import private_home

pytestmark = pytest.mark.integration
__all__ = ["service_env"]


@pytest.fixture
def on_postgres(
    service_env: ServiceEnv, schema: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, dict[str, str], Path]]:
    home = private_home(service_env, tmp_path_factory, "evidence-pg")
    settings = ServingSettings(home=home, database_url=url_in(schema), mlflow_tracking_uri=None)
    store = UserStore(open_engine(url_in(schema)), settings.token_pepper.get_secret_value())
    tokens = {
        "olga": store.add("olga", Role.officer, ["AST"])[1],
        "ada": store.add("ada", Role.auditor)[1],
    }
    store.engine.dispose()
    _materialise_on_postgres(service_env, schema)
    monitoring = MonitoringStore(url_in(schema))
    try:
        monitoring.record(
            check(
                service_env.model_version, date(2025, 6, 30), drifted=False, previous=None, seed=5
            )
        )
    finally:
        monitoring.dispose()
    with TestClient(create_app(settings)) as client:
        yield client, tokens, home


def test_evidence_pack_on_postgres(
    on_postgres: tuple[TestClient, dict[str, str], Path], service_env: ServiceEnv, schema: str
) -> None:
    c, tokens, home = on_postgres
    state = c.app.state.riskcast  # type: ignore[attr-defined]
    assert state.engine.dialect.name == "postgresql"
    assert state.ledger.engine.dialect.name == "postgresql"
    person = service_env.persons["AST"][0]
    decided = c.post(
        "/v1/decisions",
        json={"person_id": person, "action": "contacted", "purpose": "case_review"},
        headers={"Authorization": f"Bearer {tokens['olga']}"},
    )
    assert decided.status_code == 201, decided.text
    auditor = {"Authorization": f"Bearer {tokens['ada']}"}
    made = c.post(
        "/v1/audit/evidence-packs",
        json={"version": service_env.model_version, "person_id": person},
        headers=auditor,
    )
    assert made.status_code == 201, made.text
    body = made.json()
    folder = home / "evidence" / body["pack_id"] / "pack"
    assert pack_problems(folder) == []  # every file has the manifest's sha256
    raw = (folder / MANIFEST).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == body["manifest_sha256"]
    for f in json.loads(raw)["files"]:
        assert hashlib.sha256((folder / f["path"]).read_bytes()).hexdigest() == f["sha256"]
    plan = json.loads((folder / "monitoring_plan.json").read_text("utf-8"))
    assert "no monitoring check on record" not in json.dumps(plan)  # read from PostgreSQL
    export = json.loads((folder / "person_export.json").read_text("utf-8"))
    assert person in json.dumps(export) and "contacted" in json.dumps(export)

    [entry] = [e for e in state.ledger.entries() if e.kind == "evidence_pack"]  # from PostgreSQL
    assert entry.report_sha256 == body["manifest_sha256"] and entry.seq == body["ledger_seq"]
    assert person not in entry.model_dump_json()
    logged = [e for e in state.access_log.entries() if e.action == "evidence-export"]
    assert [(e.actor, e.purpose, e.persons) for e in logged] == [
        ("ada", "subject_access", [person])
    ]
    got = c.get(f"/v1/audit/evidence-packs/{body['pack_id']}/zip", headers=auditor)
    assert got.status_code == 200
    runner = CliRunner()
    with environment(
        RISKCAST_HOME=str(home), RISKCAST_DATABASE_URL=url_in(schema), MLFLOW_TRACKING_URI=None
    ):
        for chain in ("ledger", "access-log"):
            verified = runner.invoke(build_app(), [chain, "verify"])
            assert verified.exit_code == 0 and "intact" in verified.output, verified.output
