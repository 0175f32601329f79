"""Auditors' evidence packs over HTTP: assemble one (as `riskcast evidence-pack`), list them,
download a file or the whole pack as a zip.

Auditors and admins only. A pack with a person's export is a read of that person's data: its
assembly and every download of the export (or of the zip) are in the access log (purpose
``subject_access``), by the service layer (`serving.evidence.service`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import Response

from serving.api.deps import AccessLog, Auditor, State
from serving.evidence.schemas import PACK_ID, EvidencePackRequest, EvidencePackResponse
from serving.evidence.schemas import EvidencePacksResponse as PacksResponse
from serving.evidence.service import Download, create_pack, list_packs, pack_file, pack_zip
from serving.schemas import error_responses

router = APIRouter(prefix="/v1/audit", tags=["audit"])
AUDITORS_ONLY = error_responses(401, 503, described={403: "auditors and admins only"})
NO_PACK = error_responses(described={404: "no such evidence pack, or no such file in it"})
PackId = Annotated[str, Path(pattern=PACK_ID, description="the pack's id, as created")]


def _answer(download: Download) -> Response:
    return Response(
        download.content,
        media_type=download.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{download.filename}"',
            "Cache-Control": "no-store",
        },
    )


@router.post(
    "/evidence-packs",
    response_model=EvidencePackResponse,
    status_code=status.HTTP_201_CREATED,
    responses={
        **AUDITORS_ONLY,
        **error_responses(described={404: "unknown model version, or unknown person"}),
    },
)
def create_evidence_pack(
    body: EvidencePackRequest, user: Auditor, state: State, access: AccessLog
) -> EvidencePackResponse:
    """Assemble the evidence pack of a registered version of the served model: technical
    documentation, a draft impact assessment, the monitoring plan (and, with ``person_id``,
    that person's decision history with its explanation), each as HTML and JSON, with a
    manifest of sha256 digests whose own sha256 is recorded in the ledger."""
    return create_pack(state, user, body.version, body.person_id)


@router.get("/evidence-packs", response_model=PacksResponse, responses=AUDITORS_ONLY)
def list_evidence_packs(
    user: Auditor, state: State, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> PacksResponse:
    """The packs the service assembled, newest first (manifests only: no person's data)."""
    return list_packs(state, limit)


@router.get(
    "/evidence-packs/{pack_id}/files/{path:path}",
    response_class=Response,
    responses={
        200: {
            "content": {"application/json": {}, "text/html": {}, "text/markdown": {}},
            "description": "the file, as the manifest names it",
        },
        **AUDITORS_ONLY,
        **NO_PACK,
    },
)
def get_evidence_pack_file(
    user: Auditor,
    state: State,
    access: AccessLog,
    pack_id: PackId,
    path: Annotated[str, Path(max_length=300, description="a path the manifest names")],
) -> Response:
    """One file of the pack (a person's export is logged when downloaded)."""
    return _answer(pack_file(state, user, access, pack_id, path))


@router.get(
    "/evidence-packs/{pack_id}/zip",
    response_class=Response,
    responses={
        200: {"content": {"application/zip": {}}, "description": "the whole pack"},
        **AUDITORS_ONLY,
        **NO_PACK,
    },
)
def get_evidence_pack_zip(
    user: Auditor, state: State, access: AccessLog, pack_id: PackId
) -> Response:
    """The manifest and every file it names, as one zip (logged when it holds a person)."""
    return _answer(pack_zip(state, user, access, pack_id))


__all__ = ["router"]
