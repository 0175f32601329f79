"""What auditors read of the monitoring after promotion: the checks `riskcast monitor` kept
(`fairness.monitoring.store`), as time series per model and group, the alerts, the re-audit
flag, and each check's monitoring report.

- `monitoring_view`: every check of one model (oldest first), the series the page plots for one
  group column (input drift, estimated vs realised AUC and FPR with intervals, list
  composition), the newest check's breaches and re-audit reasons, and the model's
  ``monitoring_alert`` ledger entries. Only aggregated per-group figures: no person.
- the places champion's section (`serving.services.monitoring_places`): realised vs forecast
  incidents per week, observed/forecast per group and PAI over the checks, the drift table.
- `monitoring_report`: one check's report, JSON and HTML. The JSON is the kept check (its id,
  when it was kept, the whole result) as canonical bytes (`fairness.report_store.json_bytes`),
  so its sha256 is fixed by the check; it is kept once under
  ``RISKCAST_HOME/reports/monitoring/<model>/check-<id>/monitoring-report.{json,html}``
  (never overwritten) and every later read checks the kept JSON against the check, so a
  changed file shows as changed, as kept fairness reports do (`fairness.report_store`).

Reading these is appended to the access log (purpose ``audit``, no persons) by the page, as
every auditors' read is.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fairness.ledger import LedgerEntry, ledger_version
from fairness.monitoring.alerts import Breach
from fairness.monitoring.estimate import ThresholdEstimate
from fairness.monitoring.groups import ALL
from fairness.monitoring.places import PlacesAlert
from fairness.monitoring.realised import ThresholdRealised
from fairness.monitoring.store import StoredCheck, open_monitoring_store
from fairness.policy import load_policy
from fairness.report_store import REPORT_REASON, REPORTS, json_bytes
from riskcast.atomic import write_bytes, write_text
from riskcast.errors import NotFoundError, RiskcastError, StoreError
from riskcast.names import PERSON_MODEL, PLACES_MODEL
from serving.services.audit import AUDIT_PURPOSE
from serving.services.plots import Line, Plot, Point
from serving.state import AccessLogWriter, ServiceState
from serving.users import User

if TYPE_CHECKING:
    from serving.services.monitoring_places import PlacesView

MODELS = (PERSON_MODEL, PLACES_MODEL)
"""The models the page offers (the places model once a check of it is on record)."""
REPORT_STEM = "monitoring-report"
MONITOR_COMMAND = "riskcast monitor [--as-of YYYY-MM-DD]"
_CHECK_DIR = re.compile(r"^check-[0-9]{1,12}$")
_T = TypeVar("_T", ThresholdEstimate, ThresholdRealised)


@dataclass(frozen=True)
class CheckRow:
    """One kept check as the page lists it."""

    id: int
    version: str
    as_of: date
    stored_at: str
    n_current: int
    breaches: int
    reaudit: bool


@dataclass(frozen=True)
class MonitoringView:
    model: str
    models: list[str]  # the models with a check on record (and the person model)
    checks: list[CheckRow]
    group_columns: list[str]
    group_column: str | None
    threshold: float | None
    plots: list[Plot]
    breaches: list[Breach | PlacesAlert]  # the places alerts have the same fields
    reaudit: list[str]
    latest: CheckRow | None
    alerts: list[LedgerEntry]
    places: PlacesView | None = None  # the places champion's realised performance and drift


def _row(c: StoredCheck) -> CheckRow:
    r = c.result
    return CheckRow(
        c.id,
        r.version,
        r.as_of,
        f"{c.stored_at:%Y-%m-%d %H:%M} UTC",
        r.n_current,
        r.alert_count,
        bool(r.reaudit),
    )


def stored_checks(state: ServiceState, model: str) -> list[StoredCheck]:
    """Every check of ``model``, oldest first (503 when the store cannot be read)."""
    store = open_monitoring_store(state.settings.store_settings())
    try:
        return store.checks(model)
    finally:
        store.dispose()


def _policy_threshold(checks: list[StoredCheck]) -> float | None:
    """The fairness policy's operating threshold (where disparities are judged), else the
    middle threshold the newest check estimated at."""
    try:
        return float(load_policy().threshold)
    except (RiskcastError, OSError):
        ts = checks[-1].result.thresholds if checks else []
        return ts[len(ts) // 2] if ts else None


def _columns(checks: list[StoredCheck]) -> list[str]:
    seen: dict[str, None] = {}
    for c in checks:
        for d in c.result.input_drift:
            seen[d.group_column] = None
        for e in c.result.estimate:
            seen[e.group_column] = None
        p = c.result.places  # the places checks' groups (their score drift is in places)
        for r in p.realised.ratios if p is not None and p.realised is not None else []:
            seen[r.group_column] = None
        for row in p.input_drift.rows if p is not None and p.input_drift is not None else []:
            seen[row.group_column] = None
    return [k for k in seen if k != ALL]


def _in(column: str | None, group_column: str) -> bool:
    return group_column in (ALL, column)


def _label(group_column: str, group: str) -> str:
    return "overall" if group_column == ALL else group


def _drift_plot(checks: list[StoredCheck], column: str | None, alert: float | None) -> Plot:
    """The largest input PSI of each group per check (the input that moved most)."""
    lines: dict[str, list[Point]] = {}
    for c in checks:
        worst: dict[str, float] = {}
        for d in c.result.input_drift:
            if d.psi is not None and _in(column, d.group_column):
                key = _label(d.group_column, d.group)
                worst[key] = max(worst.get(key, 0.0), d.psi)
        for key, v in worst.items():
            lines.setdefault(key, []).append(Point(c.result.as_of, v))
    refs = {"alert": alert} if alert is not None else {}
    return Plot(
        "input-drift",
        "Input drift: largest PSI over the inputs",
        "PSI",
        [Line(k, k, pts) for k, pts in lines.items()],
        refs,
    )


def _performance_plot(
    checks: list[StoredCheck], column: str | None, metric: str, threshold: float | None
) -> Plot:
    """The label-free estimate (with its interval) at each check's as-of, and the realised
    value of the matured cohort at that cohort's as-of (dashed), next to the estimate made
    then."""
    est: dict[str, list[Point]] = {}
    real: dict[str, dict[date, Point]] = {}
    for c in checks:
        for e in c.result.estimate:
            if not _in(column, e.group_column):
                continue
            at = _at(e.thresholds, threshold)
            iv = e.auc if metric == "auc" else (at.fpr if at is not None else None)
            if iv is not None and iv.value is not None:
                est.setdefault(_label(e.group_column, e.group), []).append(
                    Point(c.result.as_of, iv.value, iv.lower, iv.upper)
                )
        m = c.result.matured
        for r in m.realised if m is not None else []:
            if not _in(column, r.group_column):
                continue
            rt = _at(r.thresholds, threshold)
            v = r.auc if metric == "auc" else (rt.fpr if rt is not None else None)
            if v is not None and m is not None:
                real.setdefault(_label(r.group_column, r.group), {})[m.as_of] = Point(m.as_of, v)
    lines = [Line(f"{k} estimated", k, pts) for k, pts in est.items()]
    lines += [
        Line(f"{k} realised", k, sorted(pts.values(), key=lambda p: p.as_of), dashed=True)
        for k, pts in real.items()
    ]
    if metric == "auc":
        return Plot("auc", "AUC: estimated (band: interval) and realised (dashed)", "AUC", lines)
    where = f" at {threshold:g}" if threshold is not None else ""
    return Plot(
        "fpr",
        f"False-positive rate{where}: estimated (band: interval) and realised (dashed)",
        "FPR",
        lines,
    )


def _at(thresholds: Sequence[_T], threshold: float | None) -> _T | None:
    """The entry of ``thresholds`` (estimated or realised) at ``threshold``."""
    if threshold is None:
        return None
    return next((t for t in thresholds if abs(t.threshold - threshold) < 1e-9), None)


def composition_shares(check: StoredCheck, column: str) -> dict[str, float]:
    """Each group's share of the whole list: the check's ``all`` unit when it has one, else
    the units' lists pooled (each unit weighted by its listed persons)."""
    units = [u for u in check.result.composition if column in u.shares]
    whole = [u for u in units if u.unit == ALL]
    if whole:
        return dict(whole[0].shares[column])
    total = sum(u.n_listed for u in units)
    out: dict[str, float] = {}
    for u in units if total > 0 else []:
        for group, share in u.shares[column].items():
            out[group] = out.get(group, 0.0) + share * u.n_listed / total
    return out


def _composition_plot(checks: list[StoredCheck], column: str | None) -> Plot:
    lines: dict[str, list[Point]] = {}
    for c in checks:
        for group, share in composition_shares(c, column or "").items():
            lines.setdefault(group, []).append(Point(c.result.as_of, share))
    return Plot(
        "composition",
        f"List composition: share of the listed persons by {column or 'group'}",
        "share of the list",
        [Line(k, k, pts) for k, pts in lines.items()],
    )


def monitoring_alerts(state: ServiceState, model: str, limit: int = 20) -> list[LedgerEntry]:
    """The newest ``monitoring_alert`` ledger entries of ``model`` (any version), newest first."""
    if state.ledger is None:
        raise StoreError("the ledger is not available")
    prefix = ledger_version(model, "")
    found = [
        e
        for e in state.ledger.entries()
        if e.kind == "monitoring_alert"
        and (e.version.startswith(prefix) if prefix else "@" not in e.version)
    ]
    return found[::-1][:limit]


def monitoring_view(
    state: ServiceState, model: str, group_column: str | None = None
) -> MonitoringView:
    """The page's content for ``model`` and one group column (default: the first watched)."""
    if model not in MODELS:
        raise NotFoundError(f"model {model!r} is not monitored (one of {', '.join(MODELS)})")
    checks = stored_checks(state, model)
    models = [m for m in MODELS if m in (PERSON_MODEL, model) or stored_checks(state, m)]
    columns = _columns(checks)
    column = group_column if group_column in columns else (columns[0] if columns else None)
    threshold = _policy_threshold(checks)
    alert = _psi_alert()
    places_model = any(c.result.places is not None for c in checks)
    # the places inputs are judged by rate ratios: their chart (places_plots) replaces the PSI
    plots = [] if places_model else [_drift_plot(checks, column, alert)]
    if any(c.result.estimate for c in checks):
        plots += [
            _performance_plot(checks, column, "auc", threshold),
            _performance_plot(checks, column, "fpr", threshold),
            _composition_plot(checks, column),
        ]
    from serving.services.monitoring_places import places_plots, places_view

    plots += places_plots(checks, column)
    latest = checks[-1] if checks else None
    places = places_view(checks, column)
    return MonitoringView(
        model=model,
        models=models,
        checks=[_row(c) for c in checks],
        group_columns=columns,
        group_column=column,
        threshold=threshold,
        plots=plots,
        breaches=[*latest.result.breaches, *(places.alerts if places else [])] if latest else [],
        reaudit=list(latest.result.reaudit) if latest else [],
        latest=_row(latest) if latest else None,
        alerts=monitoring_alerts(state, model),
        places=places,
    )


def _psi_alert() -> float | None:
    try:
        from fairness.monitoring.config import load_monitoring_config

        return float(load_monitoring_config().drift.psi_alert)
    except (RiskcastError, OSError):
        return None


def log_read(
    state: ServiceState,
    user: User,
    access: AccessLogWriter,
    action: str,
    params: dict[str, str | int | float | None],
) -> None:
    """An auditor's read of the monitoring (purpose ``audit``; aggregated figures only, so no
    persons): what was read, so the entry reproduces the answer."""
    access.append(
        actor=user.name,
        role=user.role.value,
        purpose=AUDIT_PURPOSE,
        action=action,
        persons=[],
        params=params,
        model_version=state.model.version if state.model else None,
        status=200,
    )


# ---- the monitoring report of one check ----------------------------------------------------
@dataclass(frozen=True)
class MonitoringReport:
    """One check's report as kept: its JSON bytes, HTML, the JSON's sha256, where it is kept,
    and what is wrong with the kept copy (empty: it matches the check)."""

    model: str
    check_id: int
    json: bytes
    html: str
    sha256: str
    kept_at: str
    problems: list[str]


def report_content(check: StoredCheck) -> dict[str, Any]:
    """What the report's JSON holds: the check as kept (only aggregated figures), and for the
    places champion a ``places`` block with its figures and intervals first
    (`monitoring_places.places_report`; person checks' reports are unchanged)."""
    from serving.services.monitoring_places import places_report

    content: dict[str, Any] = {
        "kind": "monitoring_report",
        "model": check.result.model,
        "version": check.result.version,
        "check_id": check.id,
        "as_of": check.result.as_of.isoformat(),
        "stored_at": check.stored_at.isoformat(),
        "result": check.result.model_dump(mode="json"),
    }
    places = places_report(check.result)
    if places is not None:
        content["places"] = places
    return content


def _record_kept(
    state: ServiceState, check: StoredCheck, sha: str, rel: Path, keeper: User | None
) -> None:
    if state.ledger is None:
        raise StoreError("the ledger is not available: the report cannot be kept unrecorded")
    state.ledger.append(
        "monitor_report",
        actor=keeper.name if keeper else "riskcast",
        role=keeper.role if keeper else "system",
        version=ledger_version(check.result.model, check.result.version),
        decision=f"monitoring report of check {check.id} ({check.result.as_of.isoformat()}) kept",
        reasons=[f"{REPORT_REASON}{rel.as_posix()}"],
        report_sha256=sha,
    )


def report_folder(home: Path, model: str, check_id: int) -> Path:
    folder = home / REPORTS / "monitoring" / model / f"check-{check_id}"
    if model not in MODELS or not _CHECK_DIR.match(folder.name):
        raise NotFoundError(f"no monitoring check {check_id} of {model!r}")
    return folder


def find_check(state: ServiceState, model: str, check_id: int) -> StoredCheck:
    for c in stored_checks(state, model) if model in MODELS else []:
        if c.id == check_id:
            return c
    raise NotFoundError(f"no monitoring check {check_id} of {model!r} (run `{MONITOR_COMMAND}`)")


def monitoring_report(
    state: ServiceState, model: str, check_id: int, render: Any, keeper: User | None = None
) -> MonitoringReport:
    """The report of check ``check_id``: kept on first read (JSON, then the HTML
    ``render(content, sha256)`` returns), read back afterwards and checked against the check.

    Keeping it appends a ``monitor_report`` ledger entry with the JSON's sha256 and its path,
    so `riskcast ledger verify` finds a kept report that was changed or removed afterwards,
    exactly as for fairness reports; ``keeper`` is who read it first."""
    check = find_check(state, model, check_id)
    home = state.settings.store_settings().home
    folder = report_folder(home, model, check_id)
    raw = json_bytes(report_content(check))
    sha = hashlib.sha256(raw).hexdigest()
    json_path, html_path = folder / f"{REPORT_STEM}.json", folder / f"{REPORT_STEM}.html"
    if not json_path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        write_bytes(json_path, raw)
        write_text(html_path, render(report_content(check), sha))
        _record_kept(state, check, sha, json_path.relative_to(home / REPORTS), keeper)
    kept = json_path.read_bytes()
    kept_sha = hashlib.sha256(kept).hexdigest()
    problems = (
        []
        if kept_sha == sha
        else [f"the kept {json_path.name} was changed (sha256 {kept_sha}, the check gives {sha})"]
    )
    html = html_path.read_text("utf-8") if html_path.is_file() else ""
    return MonitoringReport(
        model,
        check_id,
        kept,
        html,
        kept_sha,
        json_path.relative_to(home / REPORTS).as_posix(),
        problems,
    )


__all__ = [
    "MONITOR_COMMAND",
    "CheckRow",
    "Line",
    "MonitoringReport",
    "MonitoringView",
    "Plot",
    "Point",
    "composition_shares",
    "log_read",
    "monitoring_alerts",
    "monitoring_report",
    "monitoring_view",
    "report_content",
    "stored_checks",
]
