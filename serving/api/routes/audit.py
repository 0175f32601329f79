"""Auditors' reads: the fairness reports, the promotion ledger and the access log.

Auditors (and admins) only; officers and data scientists get 403. Each ledger and access-log
answer carries the chain's verification, so a tampered log is visible where it is read.
Access-log entries name persons, so reading them is itself in the access log (purpose ``audit``,
the filters and the last ``seq`` read, which together reproduce the answer). What is read
and logged is the service layer's (`serving.services.audit`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse

from serving.api.deps import AccessLog, Auditor, State
from serving.schemas import (
    NO_NUL,
    AccessLogResponse,
    FairnessReportResponse,
    LedgerResponse,
    error_responses,
)
from serving.services.audit import access_log_view, ledger_view, load_report, report_html

router = APIRouter(prefix="/v1", tags=["audit"])
AUDITORS_ONLY = error_responses(401, 503, described={403: "auditors and admins only"})


@router.get(
    "/fairness-reports/{version}",
    response_model=FairnessReportResponse,
    responses={
        200: {"content": {"text/html": {}}, "description": "JSON, or HTML with format=html"},
        **AUDITORS_ONLY,
        **error_responses(described={404: "no report for this version"}),
    },
)
def get_fairness_report(
    user: Auditor,
    state: State,
    version: Annotated[str, PathParam(max_length=12, description="model version, e.g. 3")],
    format: Annotated[Literal["json", "html"], Query()] = "json",
) -> FairnessReportResponse | HTMLResponse:
    """The fairness report of a model version written by `riskcast audit` (JSON or HTML)."""
    if format == "html":
        return HTMLResponse(report_html(state, version))
    return load_report(state, version)


@router.get("/ledger", response_model=LedgerResponse, responses=AUDITORS_ONLY)
def get_ledger(user: Auditor, state: State) -> LedgerResponse:
    """Every promotion-ledger entry, oldest first, with the chain's verification."""
    return ledger_view(state)


@router.get("/access-log", response_model=AccessLogResponse, responses=AUDITORS_ONLY)
def get_access_log_entries(
    user: Auditor,
    state: State,
    access: AccessLog,
    actor: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
    person: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    since: Annotated[datetime | None, Query(description="inclusive; naive means UTC")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> AccessLogResponse:
    """The newest ``limit`` matching access-log entries (oldest first) and the verification.

    This read is itself appended to the access log (purpose ``audit``) after the answer is
    taken, so it is not among the entries returned."""
    return access_log_view(state, user, access, actor, person, since, limit)


__all__ = ["router"]
