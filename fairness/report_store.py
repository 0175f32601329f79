"""Where fairness reports are kept: one folder per audit, never overwritten, and one hash.

Every audit of a version writes its report into a folder of its own,
``RISKCAST_HOME/reports/<model>-v<N>/<audit-id>/fairness-report.{json,html}``, where the audit
id is ``<UTC time to the microsecond>Z-<first 12 hex digits of the JSON's sha256>``: ids sort
by time and name the content they must hold. Why: the ledger, the CLI and the auditors' page
must name one report that still exists later; a second audit (every `promote` runs one) used to
overwrite the first, so the hash `riskcast audit` printed matched no file any more.

**The one hash is the JSON's** (``fairness-report.json``): the JSON holds the report's content
(what the gate re-reads for a champion, what the API serves); the HTML is a rendering of it and
states the JSON's sha256 and the audit id. The ledger records that hash (``report_sha256``) and
the kept JSON's path (`REPORT_REASON`, the last reason of the entry), `riskcast audit` prints
it, the page shows it, and `report_problems` (run by `riskcast ledger verify`) checks that every
report named by an entry still has it.

The newest audit is also copied to ``reports/<model>-v<N>/fairness-report.{json,html}`` (the
place readers of "the latest report of version N" used before reports were kept per audit);
`latest_report` prefers the newest kept folder and falls back to that copy.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from riskcast.atomic import write_bytes, write_text
from riskcast.digest import sha256_file

STEM = "fairness-report"
REPORTS = "reports"
REPORT_REASON = "report kept at: "
"""The prefix of the ledger reason naming the kept report (relative to ``reports/``)."""
_AUDIT_ID = re.compile(r"^[0-9]{8}T[0-9]{12}Z-[0-9a-f]{12}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class KeptReport:
    """One audit's report as kept: its folder, files, audit id and the JSON's sha256."""

    audit_id: str
    folder: Path
    json_path: Path
    html_path: Path
    sha256: str

    def relative(self, home: Path) -> str:
        """The JSON's path relative to ``home/reports`` (what the ledger records)."""
        return self.json_path.relative_to(home / REPORTS).as_posix()


def version_dir(home: Path, model_name: str, version: str) -> Path:
    """``home/reports/<model>-v<N>``: every kept audit of that version, and the latest's copy."""
    return home / REPORTS / f"{model_name}-v{version}"


def make_audit_id(json_sha256: str, at: datetime | None = None) -> str:
    """``20260131T120000123456Z-ab12cd34ef56``: sortable by time, naming the content."""
    when = (at or datetime.now(UTC)).astimezone(UTC)
    return f"{when:%Y%m%dT%H%M%S%f}Z-{json_sha256[:12]}"


def is_audit_id(name: str) -> bool:
    return bool(_AUDIT_ID.match(name))


def json_bytes(content: Mapping[str, Any]) -> bytes:
    """The JSON file's exact bytes (hashed before it is written, to name its folder)."""
    return (json.dumps(content, indent=2, default=str) + "\n").encode("utf-8")


def keep(
    content: Mapping[str, Any],
    render: Callable[[Mapping[str, Any], str, str], str],
    out_dir: Path,
    *,
    copy_latest: bool = True,
    at: datetime | None = None,
) -> KeptReport:
    """Write ``content`` as a new audit folder under ``out_dir`` (the version's folder):
    the JSON, then the HTML ``render(content, json_sha256, audit_id)`` returns; with
    ``copy_latest`` also as ``out_dir/fairness-report.{json,html}``. Nothing is overwritten but
    that copy."""
    raw = json_bytes(content)
    sha = hashlib.sha256(raw).hexdigest()
    audit_id = make_audit_id(sha, at)
    folder = out_dir / audit_id
    folder.mkdir(parents=True, exist_ok=False)
    json_path, html_path = folder / f"{STEM}.json", folder / f"{STEM}.html"
    write_bytes(json_path, raw)
    page = render(content, sha, audit_id)
    write_text(html_path, page)
    if copy_latest:
        write_bytes(out_dir / f"{STEM}.json", raw)
        write_text(out_dir / f"{STEM}.html", page)
    return KeptReport(audit_id, folder, json_path, html_path, sha)


def kept_reports(folder: Path) -> list[Path]:
    """The kept audit folders of one version's folder, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and is_audit_id(p.name))


def latest_report(folder: Path) -> Path | None:
    """The folder holding the newest report of a version: the newest kept audit, else the
    version's folder itself when it holds a report written before reports were kept per
    audit; None without any."""
    kept = [p for p in kept_reports(folder) if (p / f"{STEM}.json").is_file()]
    if kept:
        return kept[-1]
    return folder if (folder / f"{STEM}.json").is_file() else None


def audit_id_of(folder: Path) -> str | None:
    """The audit id a report folder is named by (None: a report from before audit ids)."""
    return folder.name if is_audit_id(folder.name) else None


# --------------------------------------------------------------------------- ledger side
def report_reason(json_path: Path, home: Path) -> str:
    """The ledger reason naming the kept report's JSON:
    ``report kept at: <model>-vN/<audit-id>/fairness-report.json`` (relative to ``reports/``)."""
    return f"{REPORT_REASON}{json_path.relative_to(home / REPORTS).as_posix()}"


class ReportEntry(Protocol):
    """What `report_problems` reads of a ledger entry (`fairness.ledger.LedgerEntry`)."""

    @property
    def seq(self) -> int: ...
    @property
    def reasons(self) -> list[str]: ...
    @property
    def report_sha256(self) -> str | None: ...


def referenced(entry: ReportEntry) -> str | None:
    """The kept report's path (relative to ``reports/``) an entry names, if any."""
    for reason in reversed(entry.reasons):
        if reason.startswith(REPORT_REASON):
            return reason[len(REPORT_REASON) :].strip()
    return None


def report_problems(entries: Iterable[ReportEntry], home: Path) -> list[str]:
    """One line per ledger entry whose kept report is missing, lies outside ``reports/``, or
    no longer has the sha256 the entry recorded. Entries naming no kept report (written before
    reports were kept per audit, or without a report) are not checked."""
    root = (home / REPORTS).resolve()
    problems: list[str] = []
    hashes: dict[Path, str] = {}
    for entry in entries:
        rel = referenced(entry)
        if rel is None:
            continue
        recorded = entry.report_sha256 or ""
        pure = PurePosixPath(rel)
        path = (root / pure).resolve()
        if pure.is_absolute() or ".." in pure.parts or not path.is_relative_to(root):
            problems.append(f"seq {entry.seq}: report path {rel!r} lies outside {root}")
            continue
        if not _SHA256.match(recorded):
            problems.append(f"seq {entry.seq}: names report {rel} but records no sha256 of it")
            continue
        if not path.is_file():
            problems.append(
                f"seq {entry.seq}: report {rel} is missing (the ledger recorded sha256 "
                f"{recorded[:12]}…)"
            )
            continue
        if path not in hashes:
            hashes[path] = sha256_file(path)
        if hashes[path] != recorded:
            problems.append(
                f"seq {entry.seq}: report {rel} was changed: its sha256 is "
                f"{hashes[path][:12]}…, the ledger recorded {recorded[:12]}…"
            )
    return problems
