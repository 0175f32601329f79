"""The evidence pack in the service (issue 13, section 4): ``/v1/audit/evidence-packs`` and the
"Evidence packs" page. Auditors assemble a pack; its manifest's sha256 is the ledger's, every
file downloaded has the manifest's sha256, and every read of a person's export (its assembly,
each download of it or of the zip) is in the access log."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serving.access_log import AccessLog, AccessLogEntry
from serving.app import create_app
from tests.service_helpers import ServiceEnv, settings_for
from tests.ui_helpers import csrf_of, login, private_home

API = "/v1/audit/evidence-packs"


@pytest.fixture(scope="module")
def home(service_env: ServiceEnv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return private_home(service_env, tmp_path_factory, "evidence-endpoint")


@pytest.fixture(scope="module")
def client(home: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(home))) as c:
        yield c


def _auth(env: ServiceEnv, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {env.tokens[user]}"}


def _log(c: TestClient) -> AccessLog:
    log: AccessLog = c.app.state.riskcast.access_log  # type: ignore[attr-defined]
    return log


def _newest(c: TestClient) -> AccessLogEntry:
    return _log(c).entries(limit=1)[-1]


@pytest.fixture(scope="module")
def made(client: TestClient, service_env: ServiceEnv) -> dict[str, Any]:
    person = service_env.persons["AST"][0]
    r = client.post(
        API,
        json={"version": service_env.model_version, "person_id": person},
        headers=_auth(service_env, "ada"),
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    body["_person"] = person
    return body


def test_only_auditors_and_admins(client: TestClient, service_env: ServiceEnv) -> None:
    for user in ("olga", "dan"):
        r = client.post(
            API, json={"version": service_env.model_version}, headers=_auth(service_env, user)
        )
        assert r.status_code == 403, (user, r.text)
        assert client.get(API, headers=_auth(service_env, user)).status_code == 403
    assert client.get(API, headers=_auth(service_env, "root")).status_code == 200
    assert client.get(API).status_code == 401


def test_the_pack_is_recorded_and_every_file_has_its_sha256(
    client: TestClient, service_env: ServiceEnv, made: dict[str, Any]
) -> None:
    auditor = _auth(service_env, "ada")
    assert made["with_person"] is True and made["created_by"] == "ada"
    assert made["_person"] not in json.dumps({k: v for k, v in made.items() if k != "_person"})
    kinds = {f["path"] for f in made["files"]}
    for doc in ("technical_documentation", "impact_assessment", "monitoring_plan", "person_export"):
        assert {f"{doc}.json", f"{doc}.html"} <= kinds, doc
    manifest = client.get(made["manifest_url"], headers=auditor)
    assert manifest.status_code == 200
    assert hashlib.sha256(manifest.content).hexdigest() == made["manifest_sha256"]
    for f in made["files"]:
        got = client.get(f["url"], headers=auditor)
        assert got.status_code == 200, f["path"]
        assert hashlib.sha256(got.content).hexdigest() == f["sha256"], f["path"]
        assert len(got.content) == f["bytes"]
    ledger = client.get("/v1/ledger", headers=auditor).json()
    assert ledger["verification"]["ok"] is True
    [entry] = [e for e in ledger["entries"] if e["seq"] == made["ledger_seq"]]
    assert entry["kind"] == "evidence_pack" and entry["report_sha256"] == made["manifest_sha256"]
    assert made["_person"] not in json.dumps(ledger)
    zipped = client.get(made["zip_url"], headers=auditor)
    assert zipped.status_code == 200 and zipped.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive:
        inside = {n.split("/", 1)[1]: archive.read(n) for n in archive.namelist()}
    assert set(inside) == kinds | {"manifest.json"}
    for f in made["files"]:
        assert hashlib.sha256(inside[f["path"]]).hexdigest() == f["sha256"]
    listed = client.get(API, headers=auditor).json()["packs"]
    assert listed[0]["pack_id"] == made["pack_id"]


def test_reads_of_the_persons_export_are_logged(
    client: TestClient, service_env: ServiceEnv, made: dict[str, Any]
) -> None:
    person, version = made["_person"], service_env.model_version
    built = [e for e in _log(client).entries(limit=500) if e.action == "evidence-export"]
    assert built and (built[-1].actor, built[-1].purpose, built[-1].persons) == (
        "ada",
        "subject_access",
        [person],
    )
    assert built[-1].model_version == version
    auditor = _auth(service_env, "ada")
    before = _newest(client).seq
    plain = next(f for f in made["files"] if f["path"] == "technical_documentation.json")
    assert client.get(plain["url"], headers=auditor).status_code == 200
    assert _newest(client).seq == before  # no person in it: nothing to log
    export = next(f for f in made["files"] if f["path"] == "person_export.json")
    assert client.get(export["url"], headers=_auth(service_env, "root")).status_code == 200
    entry = _newest(client)
    assert (entry.actor, entry.role, entry.purpose, entry.action) == (
        "root",
        "admin",
        "subject_access",
        "evidence-download",
    )
    assert entry.persons == [person] and entry.model_version == version
    assert entry.params == {"pack": made["pack_id"], "file": "person_export.json"}
    assert client.get(made["zip_url"], headers=auditor).status_code == 200
    assert _newest(client).params["file"] == "zip"
    assert client.get("/v1/access-log", headers=auditor).json()["verification"]["ok"] is True


def test_unknown_versions_persons_packs_and_files_are_404(
    client: TestClient, service_env: ServiceEnv, home: Path, made: dict[str, Any]
) -> None:
    auditor = _auth(service_env, "ada")
    kept = sorted(p.name for p in (home / "evidence").iterdir())
    for body in (
        {"version": "999"},
        {"version": service_env.model_version, "person_id": "no-such-person"},
    ):
        r = client.post(API, json=body, headers=auditor)
        assert r.status_code == 404, r.text
        assert r.json()["error"] == "NotFoundError"
    assert sorted(p.name for p in (home / "evidence").iterdir()) == kept  # nothing left over
    bad = client.post(API, json={"version": "v1"}, headers=auditor)
    assert bad.status_code == 422 and ["body", "version"] in [
        d["loc"] for d in bad.json()["detail"]
    ]
    base = f"{API}/{made['pack_id']}/files"
    for path in ("request.json", "../request.json", "pack/manifest.json", "nothing.json"):
        assert client.get(f"{base}/{path}", headers=auditor).status_code == 404, path
    assert client.get(f"{API}/20260101T000000Z-00000000/zip", headers=auditor).status_code == 404
    assert client.get(f"{API}/not-an-id/zip", headers=auditor).status_code == 422


def test_the_page_assembles_lists_and_downloads(
    client: TestClient, service_env: ServiceEnv, made: dict[str, Any]
) -> None:
    login(client, service_env.tokens["ada"])
    try:
        page = client.get("/ui/evidence")
        assert page.status_code == 200 and made["pack_id"] in page.text
        assert 'href="/ui/evidence"' in client.get("/ui/audit").text  # in the auditors' menu
        form = {"csrf": csrf_of(page.text), "version": service_env.model_version}
        done = client.post("/ui/evidence", data=form, follow_redirects=False)
        assert done.status_code == 303 and "assembled" in done.headers["location"]
        again = client.get(done.headers["location"])
        assert "manifest sha256" in again.text and again.text.count("<tr>") >= 3
        wrong = client.post("/ui/evidence", data={**form, "version": "999"}, follow_redirects=False)
        assert wrong.status_code == 303 and "error=" in wrong.headers["location"]
        link = f"/ui/evidence/{made['pack_id']}/files/person_export.html"
        got = client.get(link)
        assert got.status_code == 200 and made["_person"] in got.text
        entry = _newest(client)
        assert (entry.actor, entry.action, entry.persons) == (
            "ada",
            "evidence-download",
            [made["_person"]],
        )
        assert client.post("/ui/evidence", data={"version": "1"}).status_code == 403  # no csrf
    finally:
        client.cookies.clear()
    login(client, service_env.tokens["olga"])
    try:
        assert client.get("/ui/evidence", follow_redirects=False).status_code in (303, 403)
    finally:
        client.cookies.clear()
