"""The auditors' pages: the champion's fairness report, the ledger, the access log (filtered)
and the overrides (and, included here, the monitoring page: `serving.ui.monitoring`); reading
the access log and the decisions is itself in the access log, as through the API
(`serving.services.audit`, `serving.services.decisions`).

The audit page says when the champion serves by an auditor's override (a banner: who, when,
why), shows the report's one hash (the JSON's, as the ledger records it) and audit id, pages
through the ledger newest first (long reasons collapsed), checks the kept reports against the
ledger, and counts large exports (`serving.services.exports`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from riskcast.errors import NotFoundError, StoreError
from serving.api.deps import AccessLog, State
from serving.schemas import NO_NUL
from serving.services.audit import (
    LONG_REASONS,
    access_log_store,
    access_log_view,
    champion_override,
    ledger_page,
    load_report,
    model_name,
    report_audit_id,
    report_html,
)
from serving.services.decisions import list_decisions
from serving.services.exports import count_large_exports
from serving.ui.deps import UiAuditor
from serving.ui.evidence import router as evidence_pages
from serving.ui.monitoring import router as monitoring_pages
from serving.ui.page_log import page_access_log
from serving.ui.render import render
from serving.ui.security import report_policy

router = APIRouter(include_in_schema=False)
router.include_router(monitoring_pages)  # the "Monitoring" page (`serving.ui.monitoring`)
router.include_router(evidence_pages)  # the "Evidence packs" page (`serving.ui.evidence`)


@router.get("/ui/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    user: UiAuditor,
    state: State,
    access: AccessLog,
    actor: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
    person: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    since: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ledger_page_number: Annotated[int, Query(alias="ledger_page", ge=1, le=1_000_000)] = 1,
) -> HTMLResponse:
    """The champion's fairness report, the ledger, the access log (filtered), the overrides;
    reading the access log and the decisions is in the access log, as through the API."""
    since_at: datetime | None = None
    problems: list[str] = []
    if since:
        try:
            since_at = datetime.fromisoformat(since)
        except ValueError:
            problems.append(f"since: {since!r} is not a date or time (YYYY-MM-DD[THH:MM])")
    version = state.model.version if state.model else None
    report: dict[str, Any] | None = None
    if version is not None:
        try:
            loaded = load_report(state, version)
            decision = loaded.report.get("decision")
            report = {
                "version": version,
                "sha256": loaded.json_sha256,
                "audit_id": report_audit_id(state, version),
                "html": loaded.html_available,
                "decision": decision if isinstance(decision, dict) else {},
                "created_at": loaded.report.get("created_at"),
            }
        except NotFoundError:
            report = None
    filters: dict[str, Any] = {
        "actor": actor or "",
        "person": person or "",
        "since": since or "",
        "limit": limit,
    }
    ledger = ledger_page(state, ledger_page_number)
    pages = {
        n: "/ui/audit?" + urlencode({**filters, "ledger_page": n}) + "#ledger"
        for n in {1, ledger.page - 1, ledger.page + 1, ledger.pages}
        if 1 <= n <= ledger.pages
    }
    with page_access_log(access) as log:
        access_view = access_log_view(
            state, user, log, actor or None, person or None, since_at, limit
        )
        exports = _large_exports(state)
        oversight = list_decisions(state, user, log, region=None, overrides_only=False, limit=50)
        return log.answer(
            render(
                request,
                "audit.html",
                model_name=model_name(state),
                version=version,
                report=report,
                override=champion_override(state, version),
                ledger=ledger,
                ledger_pages=pages,
                long_reasons=LONG_REASONS,
                large_exports=exports,
                access=access_view,
                filters=filters,
                problems=problems,
                oversight=oversight,
            )
        )


def _large_exports(state: State) -> str:
    """The count of large exports in one line (after the access log was read, so its table
    exists), or why it is not available."""
    try:
        return count_large_exports(
            access_log_store(state), state.settings.large_export_persons
        ).describe()
    except StoreError as exc:
        return f"not available: {exc}"


@router.get("/ui/fairness-report/{version}", response_class=HTMLResponse)
def fairness_report_page(user: UiAuditor, state: State, version: str) -> HTMLResponse:
    """The report's own self-contained HTML, under a policy of its own (its styles and
    embedded charts; still no scripts, frames or forms)."""
    html = report_html(state, version)
    return HTMLResponse(
        html,
        headers={"Content-Security-Policy": report_policy(html), "Cache-Control": "no-store"},
    )
