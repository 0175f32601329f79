"""Erasure of one person (issue 13, section 3): after `POST /v1/admin/erasures` (and
`riskcast erase`) no endpoint, page, export, feature build or report shows the person, the
decisions are kept for the counts with their text blanked, and both hash chains still verify."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from features.frames.builder import collect_features
from features.frames.definitions import load_spec
from features.store.offline import OfflineStore
from serving.app import create_app
from serving.cli import build_app
from serving.db import decisions
from tests.service_helpers import ServiceEnv, environment, settings_for
from tests.ui_helpers import csrf_of, login, private_home

REASON = "erasure test: note on this person by the officer"


def _auth(env: ServiceEnv, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {env.tokens[user]}"}


@pytest.fixture(scope="module")
def home(service_env: ServiceEnv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return private_home(service_env, tmp_path_factory, "erasure")


@pytest.fixture(scope="module")
def client(home: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(home, scorebook_check_seconds=0))) as c:
        yield c


def _everything_shown(c: TestClient, env: ServiceEnv, pid: str) -> dict[str, str]:
    """Every answer that could show a person, as text (API, exports, pages)."""
    officer, auditor = _auth(env, "olga"), _auth(env, "ada")
    shown: dict[str, str] = {}
    scores = c.post("/v1/scores", json={"ids": [pid], "purpose": "case_review"}, headers=officer)
    shown["scores"] = scores.text
    for fmt in ("json", "csv"):
        listing = c.get(
            "/v1/risk-lists",
            params={"region": "AST", "purpose": "supervision", "capacity": 500, "format": fmt},
            headers=officer,
        )
        assert listing.status_code == 200, listing.text
        shown[f"list.{fmt}"] = listing.text
    shown["decisions"] = c.get("/v1/decisions", headers=officer).text
    shown["access-log"] = c.get("/v1/access-log", params={"limit": 10_000}, headers=auditor).text
    shown["access-log.person"] = c.get(
        "/v1/access-log", params={"person": pid}, headers=auditor
    ).text
    shown["ledger"] = c.get("/v1/ledger", headers=auditor).text
    login(c, env.tokens["olga"])
    shown["ui.list"] = c.get("/ui/list", params={"purpose": "supervision"}).text
    shown["ui.person"] = c.get(f"/ui/person/{pid}", params={"purpose": "case_review"}).text
    login(c, env.tokens["ada"])
    shown["ui.audit"] = c.get("/ui/audit").text
    shown["ui.audit.person"] = c.get("/ui/audit", params={"person": pid}).text
    c.cookies.clear()
    return shown


def _decisions(c: TestClient, **where: Any) -> list[dict[str, Any]]:
    engine = c.app.state.riskcast.engine  # type: ignore[attr-defined]
    query = sa.select(decisions)
    for column, value in where.items():
        query = query.where(decisions.c[column] == value)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def test_after_erasure_nothing_shows_the_person(
    client: TestClient, service_env: ServiceEnv, home: Path
) -> None:
    c, env = client, service_env
    pid = env.persons["AST"][0]
    other = env.persons["AST"][1]
    # the person is read, listed and decided on (a decision with free text)
    login(c, env.tokens["olga"])
    page = c.get(f"/ui/person/{pid}", params={"purpose": "case_review"})
    assert page.status_code == 200, page.text
    done = c.post(
        f"/ui/person/{pid}/decision",
        data={
            "csrf": csrf_of(page.text),
            "action": "disagreed",
            "reason": REASON,
            "purpose": "case_review",
        },
    )
    assert done.status_code == 200 and "recorded: disagreed" in done.text
    c.cookies.clear()
    before = _everything_shown(c, env, pid)
    for where in ("scores", "access-log", "access-log.person", "ui.person", "ui.audit.person"):
        assert pid in before[where], where  # the pseudonyms resolve for auditors
    assert REASON in before["ui.audit.person"]
    decided = len(_decisions(c))

    admin = _auth(env, "root")
    leaky = c.post(
        "/v1/admin/erasures", json={"person_id": pid, "reason": f"asked by {pid}"}, headers=admin
    )
    assert leaky.status_code == 422 and leaky.json()["detail"][0]["loc"] == ["body", "reason"]
    assert (
        c.post(
            "/v1/admin/erasures", json={"person_id": pid, "reason": "x"}, headers=admin
        ).status_code
        == 422
    )
    refused = c.post(
        "/v1/admin/erasures",
        json={"person_id": pid, "reason": "the person's request"},
        headers=_auth(env, "ada"),
    )
    assert refused.status_code == 403
    erased = c.post(
        "/v1/admin/erasures",
        json={"person_id": pid, "reason": "the person's request"},
        headers=admin,
    )
    assert erased.status_code == 200, erased.text
    body = erased.json()
    assert body["tombstone_added"] is True and body["online_vectors"] == 1
    assert body["decisions_blanked"] == 1 and body["lookup_rows"] == 1
    assert pid not in erased.text and body["pseudonym"].startswith("psn:")

    after = _everything_shown(c, env, pid)
    # answers that echo the id asked for show it only as asked, with nothing found
    [result] = json.loads(after.pop("scores"))["results"]
    assert result["status"] == "unknown" and result["probability"] is None
    assert "register of your regions" in after.pop("ui.person")
    searched = json.loads(after.pop("access-log.person"))
    assert searched["entries"] == [] and searched["filters"]["person"] == pid
    audit_page = after.pop("ui.audit.person").replace(f'value="{pid}"', "")
    assert audit_page.count(pid) <= 1 and REASON not in audit_page  # the filter, echoed
    for where, text in after.items():
        assert pid not in text, where
        assert REASON not in text, where
    assert other in after["list.json"]  # the others are still listed
    assert "erased" in after["access-log"]
    for chain in ("access-log", "ledger"):  # both chains still verify
        assert json.loads(after[chain])["verification"]["ok"] is True, chain
    ledger = json.loads(after["ledger"])["entries"]
    erasure = [e for e in ledger if e["kind"] == "erasure"]
    assert len(erasure) == 1 and erasure[0]["actor"] == "root"
    assert erasure[0]["data_digests"] == {"pseudonym": body["pseudonym"]}
    # the decision row is kept for the counts, without the person or the text
    assert len(_decisions(c)) == decided and _decisions(c, person_id=pid) == []
    [kept] = _decisions(c, person_id=body["pseudonym"])
    assert kept["reason"] is None and kept["action"] == "disagreed"
    # and no feature build sees the person again, at any as-of
    frame = collect_features(
        OfflineStore(home), load_spec(), [date(2024, 12, 31), date(2025, 6, 30)], "all"
    )
    assert pid not in set(frame["person_id"].to_list()) and other in set(frame["person_id"])
    # the tombstone keeps the access log's pseudonym, never the id in clear
    tombstones = OfflineStore(home).root / "erasures.parquet"
    assert pid.encode() not in tombstones.read_bytes()
    assert body["pseudonym"].encode() in tombstones.read_bytes()


def test_the_cli_erases_too_and_the_chains_verify(
    client: TestClient, service_env: ServiceEnv, home: Path
) -> None:
    pid = service_env.persons["AST"][2]
    c = client
    scored = c.post(
        "/v1/scores",
        json={"ids": [pid], "purpose": "case_review"},
        headers=_auth(service_env, "olga"),
    )
    assert scored.status_code == 200 and pid in scored.text
    runner = CliRunner()
    with environment(RISKCAST_HOME=str(home), RISKCAST_DATABASE_URL=None):
        out = runner.invoke(
            build_app(), ["erase", pid, "--by", "dpo", "--reason", "the person's request"]
        )
        assert out.exit_code == 0, out.output + repr(out.exception)
        assert "erased as psn:" in out.output and pid not in out.output
        for chain in ("access-log", "ledger"):
            verified = runner.invoke(build_app(), [chain, "verify"])
            assert verified.exit_code == 0 and "intact" in verified.output, verified.output
        shown = runner.invoke(build_app(), ["access-log", "show", "--json"])
        assert shown.exit_code == 0 and pid not in shown.output and "erased" in shown.output
        searched = runner.invoke(build_app(), ["access-log", "show", "--person", pid, "--json"])
        assert json.loads(searched.output) == []
        ledger = runner.invoke(build_app(), ["ledger", "show", "--json"])
        assert pid not in ledger.output and '"erasure"' in ledger.output
    # the running service picks the new materialisation up: the person is gone there too
    again = c.post(
        "/v1/scores",
        json={"ids": [pid], "purpose": "case_review"},
        headers=_auth(service_env, "olga"),
    )
    assert again.status_code == 200 and again.json()["results"][0]["status"] == "unknown"
