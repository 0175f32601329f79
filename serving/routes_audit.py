"""Auditors' reads: the fairness reports, the promotion ledger and the access log.

Auditors (and admins) only; officers and data scientists get 403. Each ledger and access-log
answer carries the chain's verification, so a tampered log is visible where it is read.
Access-log entries name persons, so reading them is itself in the access log (purpose ``audit``,
the filters and the last ``seq`` read, which together reproduce the answer).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse

from serving.access_log import AccessLog as AccessLogStore
from serving.auth import AccessLog, State, field_error, require
from serving.schemas import (
    NO_NUL,
    AccessLogEntryOut,
    AccessLogResponse,
    ChainStatus,
    FairnessReportResponse,
    LedgerEntryOut,
    LedgerResponse,
    error_responses,
)
from serving.state import AccessLogWriter, ServiceState
from serving.users import Role, User

router = APIRouter(prefix="/v1", tags=["audit"])
Auditor = Annotated[User, Depends(require(Role.auditor, Role.admin))]
_VERSION = re.compile(r"^[0-9]{1,12}$")
REPORT_STEM = "fairness-report"
AUDIT_PURPOSE = "audit"
"""The purpose recorded in the access log when an auditor (or admin) reads it."""
AUDITORS_ONLY = error_responses(401, 503, described={403: "auditors and admins only"})


def model_name(state: ServiceState) -> str:
    return state.model.name if state.model else state.settings.resolved_model_name()


def report_dir(state: ServiceState, version: str) -> Path:
    """``RISKCAST_HOME/reports/<model>-v<N>``; 404 unless ``version`` is a number."""
    if not _VERSION.match(version):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"model version {version!r} is unknown")
    return state.settings.home / "reports" / f"{model_name(state)}-v{version}"


def load_report(state: ServiceState, version: str) -> FairnessReportResponse:
    folder = report_dir(state, version)
    path = folder / f"{REPORT_STEM}.json"
    if not path.is_file():
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no fairness report for {model_name(state)} version {version} "
            f"(run `riskcast audit {version}`)",
        )
    raw = path.read_bytes()
    return FairnessReportResponse(
        model_name=model_name(state),
        version=version,
        json_sha256=hashlib.sha256(raw).hexdigest(),
        html_available=(folder / f"{REPORT_STEM}.html").is_file(),
        report=json.loads(raw),
    )


def report_html(state: ServiceState, version: str) -> str:
    path = report_dir(state, version) / f"{REPORT_STEM}.html"
    if not path.is_file():
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no HTML fairness report for {model_name(state)} version {version}",
        )
    return path.read_text("utf-8")


def ledger_view(state: ServiceState) -> LedgerResponse:
    if state.ledger is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the ledger is not available")
    check = state.ledger.verify()
    return LedgerResponse(
        verification=ChainStatus.model_validate(check.model_dump()),
        entries=[LedgerEntryOut.model_validate(e.model_dump()) for e in state.ledger.entries()],
    )


def access_log_store(state: ServiceState) -> AccessLogStore:
    if not isinstance(state.access_log, AccessLogStore):
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the access log is not available for reading"
        )
    return state.access_log


def utc_since(since: datetime | None, loc: list[str | int]) -> datetime | None:
    """``since`` in UTC (naive means UTC); 422 naming ``loc`` when it cannot be (year 1 or
    9999 with an offset that leaves the calendar)."""
    if since is None:
        return None
    if since.tzinfo is None:
        return since.replace(tzinfo=UTC)
    try:
        return since.astimezone(UTC)
    except OverflowError as exc:
        raise field_error(loc, f"{since.isoformat()} is out of range in UTC") from exc


def access_log_view(
    state: ServiceState,
    user: User,
    access: AccessLogWriter,
    actor: str | None = None,
    person: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> AccessLogResponse:
    """The newest ``limit`` matching entries and the verification; the read itself is appended
    afterwards (``persons``: the ``person`` filter, if any; ``params``: the filters, the number
    of entries and the last ``seq`` read)."""
    log = access_log_store(state)
    since = utc_since(since, ["query", "since"])
    entries = log.entries(actor=actor, person=person, since=since, limit=limit)
    check = log.verify()
    filters: dict[str, str | int | None] = {
        "actor": actor,
        "person": person,
        "since": since.isoformat() if since else None,
        "limit": limit,
    }
    access.append(
        actor=user.name,
        role=user.role.value,
        purpose=AUDIT_PURPOSE,
        action="access-log",
        persons=[person] if person is not None else [],
        params={
            **filters,
            "entries": len(entries),
            "through_seq": entries[-1].seq if entries else None,
        },
        model_version=state.model.version if state.model else None,
        status=200,
    )
    return AccessLogResponse(
        verification=ChainStatus.model_validate(check.model_dump()),
        filters=filters,
        entries=[AccessLogEntryOut.model_validate(e.model_dump()) for e in entries],
    )


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
