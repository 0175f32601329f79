"""The evidence pack in the service: auditors (and admins) assemble one, list them, download
their files and a zip (``/v1/audit/evidence-packs`` and the "Evidence" page both call these).

Packs are kept under ``RISKCAST_HOME/evidence/<pack id>/pack`` (the folder the manifest
describes; its sha256 is recorded in the ledger by `serving.evidence.build`), with the request
beside it in ``request.json`` (who, when, and the person whose export it holds, so that every
download of that export is itself in the access log, as every read of a person's data is:
who, role, purpose ``subject_access``, the model version). The pack id is made here, never
taken as a path: a request naming any other id is a 404.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fairness.report_store import json_bytes
from riskcast.atomic import write_bytes
from riskcast.errors import NotFoundError, StoreError
from serving.evidence.build import SUBJECT_ACCESS, InService, build_evidence_pack
from serving.evidence.pack import MANIFEST
from serving.evidence.schemas import (
    PACK_ID,
    EvidencePackFile,
    EvidencePackResponse,
    EvidencePacksResponse,
)
from serving.state import AccessLogWriter, ServiceState
from serving.users import User

PACKS = "evidence"
REQUEST = "request.json"
API = "/v1/audit/evidence-packs"
PERSON_DOCUMENT = "person_export"
_PACK_ID = re.compile(PACK_ID)
MEDIA = {".json": "application/json", ".html": "text/html; charset=utf-8", ".md": "text/markdown"}


def packs_root(state: ServiceState) -> Path:
    return state.settings.home / PACKS


def _folder(state: ServiceState, pack_id: str) -> Path:
    """The pack's folder; 404 for an id not of the pack form or not on record."""
    if not _PACK_ID.match(pack_id) or not (packs_root(state) / pack_id / REQUEST).is_file():
        raise NotFoundError(f"no evidence pack {pack_id!r}")
    return packs_root(state) / pack_id


def _request(folder: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((folder / REQUEST).read_text("utf-8"))
    return loaded


def _describe(folder: Path) -> EvidencePackResponse:
    meta = _request(folder)
    manifest = json.loads((folder / "pack" / MANIFEST).read_text("utf-8"))
    base = f"{API}/{folder.name}"
    return EvidencePackResponse(
        pack_id=folder.name,
        model_name=manifest["model"],
        version=manifest["version"],
        created_at=datetime.fromisoformat(meta["created_at"]),
        created_by=meta["created_by"],
        with_person=meta.get("person_id") is not None,
        manifest_sha256=meta["manifest_sha256"],
        ledger_seq=meta.get("ledger_seq"),
        manifest_url=f"{base}/files/{MANIFEST}",
        zip_url=f"{base}/zip",
        files=[EvidencePackFile(**f, url=f"{base}/files/{f['path']}") for f in manifest["files"]],
        gaps=list(manifest.get("gaps", [])),
    )


def create_pack(
    state: ServiceState, user: User, version: str, person_id: str | None
) -> EvidencePackResponse:
    """Assemble the pack of ``version`` (of the served model's name) for ``user``; a person's
    export is logged (purpose ``subject_access``) by the build itself. 404 for an unknown
    version or person (nothing is kept then), 503 without the ledger or the access log."""
    if state.ledger is None or state.access_log is None:
        raise StoreError("an evidence pack needs the service's ledger and access log")
    from serving.services.audit import model_name

    now = datetime.now(UTC)
    pack_id = f"{now:%Y%m%dT%H%M%S}Z-{secrets.token_hex(4)}"
    folder = packs_root(state) / pack_id
    within = InService(
        settings=state.settings.store_settings(),
        engine=state.engine,
        ledger=state.ledger,
        access_log=state.access_log,
        tracking_uri=state.settings.mlflow_tracking_uri,
    )
    try:
        built = build_evidence_pack(
            version,
            folder / "pack",
            person=person_id,
            by=user.name,
            role=user.role.value,
            model_name=model_name(state),
            at=now,
            within=within,
        )
    except Exception:
        _remove(folder)
        raise
    meta = {
        "pack_id": pack_id,
        "created_at": now.isoformat(),
        "created_by": user.name,
        "role": user.role.value,
        "person_id": person_id,
        "manifest_sha256": built.pack.sha256,
        "ledger_seq": built.entry.seq,
    }
    write_bytes(folder / REQUEST, json_bytes(meta))
    return _describe(folder)


def _remove(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def list_packs(state: ServiceState, limit: int = 50) -> EvidencePacksResponse:
    """The packs kept, newest first (ids sort by time)."""
    root = packs_root(state)
    found = (
        sorted(
            (p for p in root.iterdir() if _PACK_ID.match(p.name) and (p / REQUEST).is_file()),
            key=lambda p: p.name,
            reverse=True,
        )
        if root.is_dir()
        else []
    )
    return EvidencePacksResponse(packs=[_describe(p) for p in found[:limit]])


@dataclass(frozen=True)
class Download:
    content: bytes
    media_type: str
    filename: str


def _log_download(
    access: AccessLogWriter, user: User, folder: Path, what: str, version: str
) -> None:
    """A download that holds a person's export is a read of their data: logged."""
    meta = _request(folder)
    person = meta.get("person_id")
    if person is None:
        return
    access.append(
        actor=user.name,
        role=user.role.value,
        purpose=SUBJECT_ACCESS,
        action="evidence-download",
        persons=[person],
        params={"pack": folder.name, "file": what},
        model_version=version,
        status=200,
    )


def pack_file(
    state: ServiceState, user: User, access: AccessLogWriter, pack_id: str, path: str
) -> Download:
    """One file of the pack as the manifest names it (or the manifest); 404 otherwise (a path
    is looked up in the manifest, never joined as given)."""
    folder = _folder(state, pack_id)
    described = _describe(folder)
    names = {f.path for f in described.files} | {MANIFEST}
    if path not in names:
        raise NotFoundError(f"evidence pack {pack_id}: no file {path!r}")
    if path.startswith(PERSON_DOCUMENT):
        _log_download(access, user, folder, path, described.version)
    target = folder / "pack" / path
    return Download(
        target.read_bytes(), MEDIA.get(target.suffix, "application/octet-stream"), target.name
    )


def pack_zip(state: ServiceState, user: User, access: AccessLogWriter, pack_id: str) -> Download:
    """The whole pack (the manifest and every file it names) as one zip."""
    folder = _folder(state, pack_id)
    described = _describe(folder)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in [MANIFEST, *(f.path for f in described.files)]:
            archive.write(folder / "pack" / name, f"{pack_id}/{name}")
    if described.with_person:
        _log_download(access, user, folder, "zip", described.version)
    return Download(buffer.getvalue(), "application/zip", f"evidence-pack-{pack_id}.zip")
