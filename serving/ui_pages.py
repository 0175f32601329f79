"""The officers' and auditors' pages (see `serving.ui` for login, cookies and errors)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from serving.auth import AccessLog, Champion, State
from serving.db import decisions
from serving.routes_audit import (
    access_log_view,
    ledger_view,
    load_report,
    model_name,
    report_html,
)
from serving.routes_oversight import decisions_view, post_decision
from serving.routes_scores import get_risk_list, post_scores
from serving.schemas import (
    NO_NUL,
    DecisionAction,
    DecisionRequest,
    DomainContribution,
    RiskListResponse,
    ScoreRequest,
)
from serving.state import ServiceState
from serving.ui import Form, UiAuditor, UiOfficer, check_csrf, page_url, render

router = APIRouter(include_in_schema=False)
Purpose = Annotated[str | None, Query(max_length=64)]


def chosen_purpose(state: ServiceState, purpose: str | None) -> str:
    return purpose or state.settings.default_purpose()


# ---- officers -----------------------------------------------------------------------------
@router.get("/ui/list", response_class=HTMLResponse)
def risk_list_page(
    request: Request,
    user: UiOfficer,
    state: State,
    champion: Champion,
    access: AccessLog,
    purpose: Purpose = None,
    region: Annotated[str | None, Query(max_length=64)] = None,
    district: Annotated[str | None, Query(max_length=64)] = None,
    tier: Annotated[str | None, Query(max_length=32)] = None,
    capacity: Annotated[int, Query(ge=1, le=100_000)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> HTMLResponse:
    """The unit's ranked list with tiers and top reasons (the read is in the access log)."""
    chosen = chosen_purpose(state, purpose)
    unit = region or (user.regions[0] if user.regions else "")
    if not unit:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "you have no region")
    listing = get_risk_list(
        user,
        state,
        champion,
        access,
        region=unit,
        purpose=chosen,
        district=district or None,
        tier=[tier] if tier else None,
        capacity=capacity,
        offset=offset,
        limit=limit,
        format="json",
    )
    assert isinstance(listing, RiskListResponse)
    base = {
        "purpose": chosen,
        "region": unit,
        "district": district,
        "tier": tier,
        "capacity": capacity,
    }
    pages = {
        "prev": page_url("/ui/list", **base, offset=max(0, offset - limit), limit=limit)
        if offset > 0
        else None,
        "next": page_url("/ui/list", **base, offset=offset + limit, limit=limit)
        if offset + limit < listing.total
        else None,
    }
    return render(
        request,
        "list.html",
        listing=listing,
        purposes=state.settings.purposes,
        purpose=chosen,
        regions=user.regions,
        tiers=[t.name for t in champion.model.tiers],
        tier=tier,
        pages=pages,
        person_url=lambda pid: page_url(f"/ui/person/{quote(pid, safe='')}", purpose=chosen),
    )


def domain_bars(domains: list[DomainContribution]) -> dict[str, Any]:
    """An inline-SVG bar chart: one bar per domain, right (red) raises, left (blue) lowers."""
    label_w, half, row = 190, 150, 26
    top = max((abs(d.contribution) for d in domains), default=0.0) or 1.0
    centre = label_w + half
    bars = []
    for i, d in enumerate(domains):
        width = abs(d.contribution) / top * half
        bars.append(
            {
                "label": d.domain.replace("_", " "),
                "y": 6 + i * row,
                "x": centre if d.contribution >= 0 else centre - width,
                "w": max(width, 1.0),
                "colour": "#c0392b" if d.contribution >= 0 else "#2e6da4",
                "value": d.contribution,
                "static": d.static,
                "dynamic": d.dynamic,
            }
        )
    return {
        "bars": bars,
        "width": label_w + 2 * half + 70,
        "height": 12 + row * len(domains),
        "centre": centre,
        "text_x": label_w + 2 * half + 6,
    }


def measure_choices(state: ServiceState, suggested: set[str]) -> list[dict[str, Any]]:
    """The decision form's support measures by name, the ones suggested for this person first."""
    measures = sorted(state.catalogue.measures, key=lambda m: (m.id not in suggested, m.name))
    return [{"id": m.id, "name": m.name, "suggested": m.id in suggested} for m in measures]


@router.get("/ui/person/{person_id}", response_class=HTMLResponse)
def person_page(
    request: Request,
    person_id: str,
    user: UiOfficer,
    state: State,
    champion: Champion,
    access: AccessLog,
    purpose: Purpose = None,
    notice: Annotated[str | None, Query(max_length=200)] = None,
    error: Annotated[str | None, Query(max_length=500)] = None,
) -> HTMLResponse:
    """A person's explanation, register facts, suggested support and the decision form."""
    chosen = chosen_purpose(state, purpose)
    try:
        body = ScoreRequest(ids=[person_id], purpose=chosen)
    except ValidationError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"person {person_id!r} is unknown") from exc
    scored = post_scores(body, user, state, champion, access).results[0]
    if scored.status != "scored" or scored.explanation is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"person {person_id!r}: {scored.message or 'unknown'}"
        )
    with state.engine.connect() as conn:
        past = (
            conn.execute(
                sa.select(decisions)
                .where(decisions.c.person_id == scored.person_id)
                .order_by(decisions.c.id.desc())
                .limit(20)
            )
            .mappings()
            .all()
        )
    return render(
        request,
        "person.html",
        person=scored,
        chart=domain_bars(scored.explanation.domains),
        purposes=state.settings.purposes,
        purpose=chosen,
        actions=[a.value for a in DecisionAction],
        measures=measure_choices(state, {m.id for m in scored.explanation.support}),
        decisions=[dict(r) for r in past],
        notice=notice,
        error=error,
        back=page_url("/ui/list", purpose=chosen),
    )


@router.post("/ui/person/{person_id}/decision")
def decision_form(
    request: Request,
    person_id: str,
    user: UiOfficer,
    state: State,
    access: AccessLog,
    form: Form,
) -> Response:
    """Records the decision through the API's logic, then shows the person page again."""
    check_csrf(request, form)
    purpose = form.get("purpose") or state.settings.default_purpose()
    back = f"/ui/person/{quote(person_id, safe='')}"
    try:
        body = DecisionRequest(
            person_id=person_id,
            action=form.get("action", ""),  # validated here
            measure_id=form.get("measure_id") or None,
            reason=form.get("reason") or None,
            purpose=purpose,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return RedirectResponse(page_url(back, purpose=purpose, error=problems[:500]), 303)
    try:
        done = post_decision(body, user, state, access)
    except HTTPException as exc:
        if exc.status_code != 422:
            raise
        detail = exc.detail
        message = (
            "; ".join(str(d.get("msg", d)) for d in detail if isinstance(d, dict))
            if isinstance(detail, list)
            else str(detail)
        )
        return RedirectResponse(page_url(back, purpose=purpose, error=message[:500]), 303)
    notice = f"decision #{done.id} recorded: {done.action.value}"
    if done.measure_id:
        notice += f" to {done.measure_id}"
    return RedirectResponse(page_url(back, purpose=purpose, notice=notice), 303)


# ---- auditors -----------------------------------------------------------------------------
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
                "html": loaded.html_available,
                "decision": decision if isinstance(decision, dict) else {},
                "created_at": loaded.report.get("created_at"),
            }
        except HTTPException:
            report = None
    access_view = access_log_view(
        state, user, access, actor or None, person or None, since_at, limit
    )
    return render(
        request,
        "audit.html",
        model_name=model_name(state),
        version=version,
        report=report,
        ledger=ledger_view(state),
        access=access_view,
        filters={
            "actor": actor or "",
            "person": person or "",
            "since": since or "",
            "limit": limit,
        },
        problems=problems,
        oversight=decisions_view(user, state, access, region=None, overrides_only=False, limit=50),
    )


@router.get("/ui/fairness-report/{version}", response_class=HTMLResponse)
def fairness_report_page(user: UiAuditor, state: State, version: str) -> HTMLResponse:
    """The report's own self-contained HTML."""
    return HTMLResponse(report_html(state, version))
