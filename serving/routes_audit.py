"""Auditors' reads: the fairness reports, the promotion ledger and the access log.

Auditors (and admins) only; officers and data scientists get 403. Each ledger and access-log
answer carries the chain's verification, so a tampered log is visible where it is read.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse

from serving.access_log import AccessLog as AccessLogStore
from serving.auth import State, require
from serving.schemas import (
    AccessLogEntryOut,
    AccessLogResponse,
    ChainStatus,
    FairnessReportResponse,
    LedgerEntryOut,
    LedgerResponse,
)
from serving.state import ServiceState
from serving.users import Role, User

router = APIRouter(prefix="/v1", tags=["audit"])
Auditor = Annotated[User, Depends(require(Role.auditor, Role.admin))]
_VERSION = re.compile(r"^[0-9]{1,12}$")
REPORT_STEM = "fairness-report"


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


def access_log_view(
    state: ServiceState,
    actor: str | None = None,
    person: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> AccessLogResponse:
    log = access_log_store(state)
    entries = log.entries(actor=actor, person=person, since=since, limit=limit)
    check = log.verify()
    return AccessLogResponse(
        verification=ChainStatus.model_validate(check.model_dump()),
        filters={
            "actor": actor,
            "person": person,
            "since": since.isoformat() if since else None,
            "limit": limit,
        },
        entries=[AccessLogEntryOut.model_validate(e.model_dump()) for e in entries],
    )


@router.get(
    "/fairness-reports/{version}",
    response_model=FairnessReportResponse,
    responses={
        200: {"content": {"text/html": {}}, "description": "JSON, or HTML with format=html"},
        404: {"description": "no report for this version"},
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


@router.get("/ledger", response_model=LedgerResponse)
def get_ledger(user: Auditor, state: State) -> LedgerResponse:
    """Every promotion-ledger entry, oldest first, with the chain's verification."""
    return ledger_view(state)


@router.get("/access-log", response_model=AccessLogResponse)
def get_access_log_entries(
    user: Auditor,
    state: State,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    person: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[datetime | None, Query(description="inclusive; naive means UTC")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> AccessLogResponse:
    """The newest ``limit`` matching access-log entries (oldest first) and the verification."""
    return access_log_view(state, actor, person, since, limit)


__all__ = ["router"]
