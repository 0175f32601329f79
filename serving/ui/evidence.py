"""The auditors' "Evidence packs" page: assemble a pack (as `riskcast evidence-pack`), see the
packs kept with their manifest's sha256 and ledger entry, download their files and a zip.

It calls the service layer (`serving.evidence.service`), as the API's routes do; a download
of a person's export is in the access log there. Errors a user can fix (an unknown version or
person) come back on the page; the rest is the pages' error page.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from riskcast.errors import NotFoundError
from serving.api.deps import AccessLog, State
from serving.evidence.schemas import EvidencePackRequest
from serving.evidence.service import Download, create_pack, list_packs, pack_file, pack_zip
from serving.schemas import NO_NUL
from serving.services.audit import model_name
from serving.ui.deps import Form, UiAuditor, check_csrf
from serving.ui.render import page_url, render

PAGE = "/ui/evidence"
router = APIRouter(include_in_schema=False)
Message = Annotated[str | None, Query(max_length=300, pattern=NO_NUL)]


@router.get(PAGE, response_class=HTMLResponse)
def evidence_page(
    request: Request, user: UiAuditor, state: State, notice: Message = None, error: Message = None
) -> HTMLResponse:
    """The form and the packs kept (newest first; manifests only, no person's data)."""
    packs = list_packs(state).packs
    for pack in packs:  # the page's own download addresses (session, not bearer token)
        pack.zip_url = f"{PAGE}/{pack.pack_id}/zip"
        for f in pack.files:
            f.url = f"{PAGE}/{pack.pack_id}/files/{f.path}"
    return render(
        request,
        "evidence.html",
        model_name=model_name(state),
        version=state.model.version if state.model else "",
        packs=packs,
        notice=notice,
        error=error,
    )


@router.post(PAGE)
def evidence_form(request: Request, user: UiAuditor, state: State, form: Form) -> Response:
    """Assemble a pack from the form (``version``, optional ``person_id``)."""
    check_csrf(request, form)
    try:
        body = EvidencePackRequest(
            version=form.get("version", "").strip(),
            person_id=form.get("person_id", "").strip() or None,
        )
    except ValidationError:
        why = "give a version number (and, optionally, a person id of at most 64 characters)"
        return RedirectResponse(page_url(PAGE, error=why), 303)
    try:
        made = create_pack(state, user, body.version, body.person_id)
    except NotFoundError as exc:
        return RedirectResponse(page_url(PAGE, error=str(exc)[:300]), 303)
    done = f"pack {made.pack_id} assembled; manifest sha256 {made.manifest_sha256}"
    return RedirectResponse(page_url(PAGE, notice=done), 303)


def _answer(download: Download) -> Response:
    return Response(
        download.content,
        media_type=download.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{download.filename}"',
            "Cache-Control": "no-store",
        },
    )


@router.get(PAGE + "/{pack_id}/files/{path:path}")
def evidence_file(
    user: UiAuditor, state: State, access: AccessLog, pack_id: str, path: str
) -> Response:
    return _answer(pack_file(state, user, access, pack_id, path))


@router.get(PAGE + "/{pack_id}/zip")
def evidence_zip(user: UiAuditor, state: State, access: AccessLog, pack_id: str) -> Response:
    return _answer(pack_zip(state, user, access, pack_id))
