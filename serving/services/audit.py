"""What auditors read: the fairness reports, the promotion ledger and the access log.

Each ledger and access-log answer carries the chain's verification, so a tampered log is
visible where it is read. Every audit's report is kept (`fairness.report_store`); "the report
of version N" is the newest kept one, and its one hash is the sha256 of its JSON, as the ledger
records it. The page also reads which entry made the champion (`champion_override`: a banner
when it was an override), the ledger a page at a time (`ledger_page`, with the kept reports
checked against their recorded hashes) and the count of large exports. Access-log entries
name persons, so reading them is itself appended to the access log (purpose ``audit``, the
filters and the last ``seq`` read, which together reproduce the answer).
The API's auditors' routes and the audit page both call these.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fairness.ledger import LedgerEntry
from fairness.promotion import champion_basis
from fairness.report_store import STEM, audit_id_of, latest_report, report_problems, version_dir
from riskcast.errors import FieldError, NotFoundError, StoreError
from serving.access_log import AccessLog as AccessLogStore
from serving.schemas import (
    AccessLogEntryOut,
    AccessLogResponse,
    ChainStatus,
    FairnessReportResponse,
    LedgerEntryOut,
    LedgerResponse,
)
from serving.state import AccessLogWriter, ServiceState
from serving.users import User

_VERSION = re.compile(r"^[0-9]{1,12}$")
REPORT_STEM = STEM
LEDGER_PAGE_SIZE = 25
"""Ledger entries per page on the auditors' page (newest first)."""
LONG_REASONS = 160
"""Reasons longer than this (joined) are collapsed on the page (<details>)."""
PERSON_FILTER = "persons[0]"
"""What an access-log read logs as its ``person`` filter: the person is the entry's ``persons``
(stored as a keyed pseudonym, `serving.pseudonyms`), so erasing them leaves no id behind."""
AUDIT_PURPOSE = "audit"
"""The purpose recorded in the access log when an auditor (or admin) reads it."""


def model_name(state: ServiceState) -> str:
    """The served model's name, or the configured one while none is loaded."""
    return state.model.name if state.model else state.settings.resolved_model_name()


def report_dir(state: ServiceState, version: str) -> Path:
    """``RISKCAST_HOME/reports/<model>-v<N>``; 404 unless ``version`` is a number (so a
    version can never name a path outside the reports)."""
    if not _VERSION.match(version):
        raise NotFoundError(f"model version {version!r} is unknown")
    return version_dir(state.settings.home, model_name(state), version)


def latest_report_dir(state: ServiceState, version: str) -> Path:
    """The folder of the newest report of ``version`` (the newest kept audit, else a report
    written before reports were kept per audit); 404 without one."""
    folder = latest_report(report_dir(state, version))
    if folder is None:
        raise NotFoundError(
            f"no fairness report for {model_name(state)} version {version} "
            f"(run `riskcast audit {version}`)"
        )
    return folder


def report_audit_id(state: ServiceState, version: str) -> str | None:
    """The audit id of the newest report of ``version`` (None: written before audit ids)."""
    return audit_id_of(latest_report_dir(state, version))


def load_report(state: ServiceState, version: str) -> FairnessReportResponse:
    """The newest fairness report `riskcast audit` kept for ``version``, with its sha256 (the
    JSON's: the hash the ledger records); 404 without one."""
    folder = latest_report_dir(state, version)
    path = folder / f"{REPORT_STEM}.json"
    raw = path.read_bytes()
    return FairnessReportResponse(
        model_name=model_name(state),
        version=version,
        json_sha256=hashlib.sha256(raw).hexdigest(),
        html_available=(folder / f"{REPORT_STEM}.html").is_file(),
        report=json.loads(raw),
    )


def report_html(state: ServiceState, version: str) -> str:
    """The newest report's self-contained HTML (404 without one)."""
    path = latest_report_dir(state, version) / f"{REPORT_STEM}.html"
    if not path.is_file():
        raise NotFoundError(f"no HTML fairness report for {model_name(state)} version {version}")
    return path.read_text("utf-8")


def ledger_view(state: ServiceState) -> LedgerResponse:
    """Every promotion-ledger entry, oldest first, and the chain's verification."""
    if state.ledger is None:
        raise StoreError("the ledger is not available")
    check = state.ledger.verify()
    return LedgerResponse(
        verification=ChainStatus.model_validate(check.model_dump()),
        entries=[LedgerEntryOut.model_validate(e.model_dump()) for e in state.ledger.entries()],
    )


@dataclass(frozen=True)
class OverrideBanner:
    """The champion serves by an auditor's override: who, when, why, and what the gate said."""

    version: str
    actor: str
    role: str
    at: datetime
    reason: str
    gate: str
    seq: int


def _reason(entry: LedgerEntry, prefix: str) -> str | None:
    found = next((r for r in entry.reasons if r.startswith(prefix)), None)
    return None if found is None else found[len(prefix) :].strip()


def champion_override(state: ServiceState, version: str | None = None) -> OverrideBanner | None:
    """The override that made the served champion (``version``, default the loaded model's)
    champion, per the ledger; None if a passing promotion made it (or the ledger names none)."""
    version = version or (state.model.version if state.model else None)
    if version is None or state.ledger is None:
        return None
    basis = champion_basis(state.ledger.entries(version=version), version)
    if basis is None or basis.kind != "override":
        return None
    return OverrideBanner(
        version=version,
        actor=basis.actor,
        role=basis.role,
        at=basis.at,
        reason=_reason(basis, "reason: ") or "–",
        gate=_reason(basis, "gate outcome overridden: ") or "not passed",
        seq=basis.seq,
    )


@dataclass(frozen=True)
class LedgerPage:
    """One page of the ledger, newest first, with the chain's verification and the kept
    reports' check (`report_problems`: every report an entry names still has its hash)."""

    verification: ChainStatus
    entries: list[LedgerEntryOut]
    page: int
    pages: int
    total: int
    size: int
    report_problems: list[str]


def ledger_page(state: ServiceState, page: int = 1, size: int = LEDGER_PAGE_SIZE) -> LedgerPage:
    """Page ``page`` (from 1; beyond the last gives the last) of the ledger, newest first."""
    if state.ledger is None:
        raise StoreError("the ledger is not available")
    check = state.ledger.verify()
    everything = state.ledger.entries()
    pages = max(1, math.ceil(len(everything) / size))
    page = min(max(1, page), pages)
    newest_first = everything[::-1]
    shown = newest_first[(page - 1) * size : page * size]
    return LedgerPage(
        verification=ChainStatus.model_validate(check.model_dump()),
        entries=[LedgerEntryOut.model_validate(e.model_dump()) for e in shown],
        page=page,
        pages=pages,
        total=len(everything),
        size=size,
        report_problems=report_problems(everything, state.settings.home),
    )


def access_log_store(state: ServiceState) -> AccessLogStore:
    """The access log as a store that can be read (503 when the service writes elsewhere)."""
    if not isinstance(state.access_log, AccessLogStore):
        raise StoreError("the access log is not available for reading")
    return state.access_log


def utc_since(since: datetime | None, loc: Sequence[str | int]) -> datetime | None:
    """``since`` in UTC (naive means UTC); 422 naming ``loc`` when it cannot be (year 1 or
    9999 with an offset that leaves the calendar)."""
    if since is None:
        return None
    if since.tzinfo is None:
        return since.replace(tzinfo=UTC)
    try:
        return since.astimezone(UTC)
    except OverflowError as exc:
        raise FieldError(loc, f"{since.isoformat()} is out of range in UTC") from exc


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
            # the person is in ``persons`` (pseudonymised, so erasable); never in clear here
            "person": None if person is None else PERSON_FILTER,
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


__all__ = [
    "AUDIT_PURPOSE",
    "LedgerPage",
    "OverrideBanner",
    "access_log_view",
    "champion_override",
    "ledger_page",
    "ledger_view",
    "load_report",
    "model_name",
    "report_audit_id",
    "report_html",
]
