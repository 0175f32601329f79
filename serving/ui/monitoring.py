"""The auditors' "Monitoring" page: the checks `riskcast monitor` kept, per model and group
column, as time-series plots drawn on the server (inline SVG, `serving.ui.charts`): input
drift, estimated vs realised AUC and FPR with intervals, list composition; the newest check's
breaches, the ``monitoring_alert`` ledger entries, the re-audit flag of the two-consecutive-
breach rule; each check's monitoring report (HTML + JSON, its sha256 shown, kept once).

The admin stops the champion from here through the service's one stop switch (the function
the API's ``POST /admin/stop`` calls, `serving.services.oversight.stop_scoring`), by a form
carrying the session's CSRF token. Every read is in the access log
(`serving.services.monitoring.log_read`), as the audit page's reads are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from riskcast.names import PERSON_MODEL
from serving.api.deps import AccessLog, State
from serving.db import stop_reason
from serving.schemas import NO_NUL, StopRequest
from serving.services.audit import model_name
from serving.services.monitoring import (
    MONITOR_COMMAND,
    log_read,
    monitoring_report,
    monitoring_view,
)
from serving.services.oversight import stop_scoring
from serving.ui.charts import svg
from serving.ui.deps import Form, UiAuditor, check_csrf, ui_require
from serving.ui.page_log import page_access_log
from serving.ui.render import page_url, render
from serving.ui.security import report_policy
from serving.users import Role, User

router = APIRouter(include_in_schema=False)
UiAdmin = Annotated[User, Depends(ui_require(Role.admin))]
PAGE = "/ui/monitoring"


def report_path(model: str, check_id: int, fmt: str) -> str:
    return f"{PAGE}/{model}/check/{check_id}/report.{fmt}"


@router.get(PAGE, response_class=HTMLResponse)
def monitoring_page(
    request: Request,
    user: UiAuditor,
    state: State,
    access: AccessLog,
    model: Annotated[str, Query(max_length=100, pattern=NO_NUL)] = PERSON_MODEL,
    group_column: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
    notice: Annotated[str | None, Query(max_length=600, pattern=NO_NUL)] = None,
    error: Annotated[str | None, Query(max_length=600, pattern=NO_NUL)] = None,
) -> HTMLResponse:
    """The monitoring of ``model`` by ``group_column``; the read is in the access log."""
    with page_access_log(access) as log:
        view = monitoring_view(state, model, group_column)
        log_read(
            state,
            user,
            log,
            "monitoring",
            {
                "model": view.model,
                "group_column": view.group_column,
                "checks": len(view.checks),
                "through_check": view.checks[-1].id if view.checks else None,
            },
        )
        return log.answer(
            render(
                request,
                "monitoring.html",
                view=view,
                charts=[(p, svg(p)) for p in view.plots if not p.empty],
                served_model=model_name(state),
                version=state.model.version if state.model else None,
                stopped=stop_reason(state.engine),
                command=MONITOR_COMMAND,
                report_path=report_path,
                notice=notice,
                error=error,
            )
        )


def _report(request: Request, content: Mapping[str, Any], sha256: str) -> str:
    """The report's self-contained HTML (its own styles, no scripts, no forms)."""
    env = request.app.state.templates
    html: str = env.get_template("monitoring_report.html").render(r=content, sha256=sha256)
    return html


def _download(
    request: Request,
    user: User,
    state: State,
    access: AccessLog,
    model: str,
    check_id: int,
    fmt: str,
) -> Response:
    with page_access_log(access) as log:
        kept = monitoring_report(
            state, model, check_id, lambda c, s: _report(request, c, s), keeper=user
        )
        log_read(
            state,
            user,
            log,
            "monitoring-report",
            {"model": model, "check_id": check_id, "format": fmt, "sha256": kept.sha256},
        )
        name = f"{model}-check-{check_id}-monitoring-report.{fmt}"
        shown = "attachment" if fmt == "json" else "inline"  # the HTML opens in the browser
        headers = {
            "Cache-Control": "no-store",
            "X-Report-Sha256": kept.sha256,
            "Content-Disposition": f'{shown}; filename="{name}"',
        }
        if fmt == "json":
            return log.answer(Response(kept.json, media_type="application/json", headers=headers))
        headers["Content-Security-Policy"] = report_policy(kept.html)
        return log.answer(HTMLResponse(kept.html, headers=headers))


@router.get(PAGE + "/{model}/check/{check_id}/report.json")
def monitoring_report_json(
    request: Request, user: UiAuditor, state: State, access: AccessLog, model: str, check_id: int
) -> Response:
    """The check's report as JSON (the bytes its sha256 is of)."""
    return _download(request, user, state, access, model, check_id, "json")


@router.get(PAGE + "/{model}/check/{check_id}/report.html", response_class=HTMLResponse)
def monitoring_report_html(
    request: Request, user: UiAuditor, state: State, access: AccessLog, model: str, check_id: int
) -> Response:
    """The check's report as self-contained HTML (stating the JSON's sha256)."""
    return _download(request, user, state, access, model, check_id, "html")


@router.post(PAGE + "/stop")
def stop_form(request: Request, user: UiAdmin, state: State, form: Form) -> Response:
    """Turn the stop switch on as the API's ``POST /admin/stop`` does (the same service
    function and the same request's rules), with a reason."""
    check_csrf(request, form)
    back = {"model": form.get("model") or None}
    try:
        body = StopRequest(reason=" ".join(form.get("reason", "").split()))
    except ValidationError:
        why = "give a reason to stop (3 to 500 characters)"
        return RedirectResponse(page_url(PAGE, **back, error=why), 303)
    reason = stop_scoring(state, user, body.reason)
    return RedirectResponse(page_url(PAGE, **back, notice=f"scoring is stopped: {reason}"), 303)
