"""The officers' pages: risk lists, person pages and decisions (`serving.ui.deps` for
sessions and forms, `serving.ui.app` for errors).

Person data is read only for a purpose the officer chose: a page asked without one shows the
purpose select and nothing else (no read, no access-log entry), pre-selecting only a purpose
chosen earlier in the same session. Every read goes through the service layer
(`serving.services`), the same functions the API's routes call, with a `PageAccessLog`, so
the access log records the status the page answered.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from riskcast.errors import FieldError
from serving.api.deps import AccessLog, Champion, State
from serving.schemas import (
    DecisionAction,
    DecisionRequest,
    DomainContribution,
    ScoreRequest,
)
from serving.services.decisions import person_decisions, record_decision
from serving.services.lists import risk_list
from serving.services.meaning import score_meaning, tier_label
from serving.services.policy import check_purpose
from serving.services.scores import score_persons
from serving.sessions import Session
from serving.state import ServiceState
from serving.ui.deps import Form, UiOfficer, UiSession, check_csrf, session_store
from serving.ui.page_log import page_access_log
from serving.ui.render import page_url, render

router = APIRouter(include_in_schema=False)
Purpose = Annotated[str | None, Query(max_length=64)]
NOT_FOUND_STATUSES = {"unknown"}
"""Per-id statuses of the API that the person page answers with 404 (no such person for this
officer); any other status but ``scored`` (``outside_population``) is a 200 with its notice."""


def chosen_purpose(
    request: Request, state: ServiceState, session: Session, purpose: str | None
) -> str | None:
    """The purpose the officer chose for this read (remembered in the session, to pre-select
    it later), None when none was chosen; one that is not allowed is a 422 page."""
    if not purpose:
        return None
    check_purpose(state, purpose, ["query", "purpose"])
    session_store(request, state).remember_purpose(session, purpose)
    return purpose


def person_path(person_id: str) -> str:
    return f"/ui/person/{quote(person_id, safe='')}"


# ---- officers -----------------------------------------------------------------------------
@router.get("/ui/list", response_class=HTMLResponse)
def risk_list_page(
    request: Request,
    user: UiOfficer,
    session: UiSession,
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
    undecided: Annotated[bool, Query()] = False,
) -> HTMLResponse:
    """The unit's ranked list with tiers, top reasons and each person's latest decision, once
    a purpose is chosen (the read is in the access log with it); what the probability means
    (event, horizon, base rate, the tiers' bands) above it."""
    unit = region or (user.regions[0] if user.regions else "")
    if not unit:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "you have no region")
    chosen = chosen_purpose(request, state, session, purpose)
    context: dict[str, Any] = {
        "purposes": state.settings.purposes,
        "regions": user.regions,
        "tiers": [
            {"name": t.name, "label": tier_label(t.name)}
            for t in sorted(champion.model.tiers, key=lambda t: t.min_probability)
        ],
        "filters": {
            "region": unit,
            "district": district or "",
            "tier": tier or "",
            "capacity": capacity,
            "undecided": undecided,
        },
        "max_capacity": state.settings.max_list_capacity.get(user.role.value),
        "measure_name": state.catalogue.name_of,
    }
    if chosen is None:  # nothing is read until the officer says why
        return render(request, "list.html", listing=None, purpose=session.purpose, **context)
    with page_access_log(access) as log:
        listing = risk_list(
            state,
            champion,
            user,
            log,
            region=unit,
            purpose=chosen,
            district=district or None,
            tiers=[tier] if tier else None,
            capacity=capacity,
            offset=offset,
            limit=limit,
            output="json",
            undecided_only=undecided,
        )
        base = {
            "purpose": chosen,
            "region": unit,
            "district": district,
            "tier": tier,
            "capacity": capacity,
            "undecided": "true" if undecided else None,
        }
        pages = {
            "prev": page_url("/ui/list", **base, offset=max(0, offset - limit), limit=limit)
            if offset > 0
            else None,
            "next": page_url("/ui/list", **base, offset=offset + limit, limit=limit)
            if offset + limit < listing.total
            else None,
        }
        return log.answer(
            render(
                request,
                "list.html",
                listing=listing,
                purpose=chosen,
                pages=pages,
                person_url=lambda pid: page_url(person_path(pid), purpose=chosen),
                **context,
            )
        )


def domain_bars(domains: list[DomainContribution]) -> dict[str, Any]:
    """An inline-SVG bar chart: one bar per domain, right (red) raises, left (blue) lowers;
    labelled in words (officers get no log-odds)."""
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
        "width": label_w + 2 * half + 130,
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
    session: UiSession,
    state: State,
    champion: Champion,
    access: AccessLog,
    purpose: Purpose = None,
    notice: Annotated[str | None, Query(max_length=200)] = None,
    error: Annotated[str | None, Query(max_length=500)] = None,
) -> HTMLResponse:
    """A person's explanation, register facts, suggested support and the decision form, once
    a purpose is chosen; a person the API does not score gets its notice, and no form."""
    chosen = chosen_purpose(request, state, session, purpose)
    common: dict[str, Any] = {
        "person_id": person_id,
        "person_url": person_path(person_id),
        "purposes": state.settings.purposes,
        "notice": notice,
        "error": error,
    }
    if chosen is None:  # nothing is read until the officer says why
        return render(
            request,
            "person.html",
            person=None,
            purpose=session.purpose,
            back="/ui/list",
            **common,
        )
    back = page_url("/ui/list", purpose=chosen)
    with page_access_log(access) as log:
        try:
            body = ScoreRequest(ids=[person_id], purpose=chosen)
        except ValidationError as exc:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"person {person_id!r} is unknown"
            ) from exc
        scored = score_persons(state, champion, user, log, body.ids, body.purpose).results[0]
        if scored.status != "scored" or scored.explanation is None:
            answered = 404 if scored.status in NOT_FOUND_STATUSES else 200
            return log.answer(
                render(
                    request,
                    "person.html",
                    answered,
                    person=scored,
                    purpose=chosen,
                    back=back,
                    **common,
                )
            )
        past = person_decisions(state, scored.person_id)
        return log.answer(
            render(
                request,
                "person.html",
                person=scored,
                chart=domain_bars(scored.explanation.domains),
                meaning=score_meaning(state, champion),
                measure_name=state.catalogue.name_of,
                max_measures=state.catalogue.suggestions.max_measures,
                purpose=chosen,
                actions=[a.value for a in DecisionAction],
                measures=measure_choices(state, {m.id for m in scored.explanation.support}),
                decisions=past,
                back=back,
                **common,
            )
        )


@router.post("/ui/person/{person_id}/decision")
def decision_form(
    request: Request,
    person_id: str,
    user: UiOfficer,
    session: UiSession,
    state: State,
    access: AccessLog,
    form: Form,
) -> Response:
    """Records the decision through the API's logic, then shows the person page again.

    A malformed form (no purpose chosen, a field the form cannot send) is a 422 page and
    records nothing; a rule of the API (a disagreement needs a reason, ...) is shown on the
    person page. The decision and its access-log entry are committed together by the API's
    function, so that entry is written as the API writes it (201: the decision was created;
    the page's 303 only sends the browser back to the person)."""
    check_csrf(request, form)
    purpose = form.get("purpose", "")
    if not purpose:
        raise FieldError(["form", "purpose"], "choose the purpose of this decision")
    check_purpose(state, purpose, ["form", "purpose"])
    try:
        body = DecisionRequest(
            person_id=person_id,
            action=form.get("action", ""),  # validated here
            measure_id=form.get("measure_id") or None,
            reason=form.get("reason") or None,
            purpose=purpose,
        )
    except ValidationError as exc:
        problems = [
            {"loc": ["form", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()
        ]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, problems) from None
    session_store(request, state).remember_purpose(session, purpose)
    back = person_path(person_id)
    try:
        done = record_decision(state, user, access, body)
    except FieldError as exc:  # a rule of the decision: shown on the person page
        message = "; ".join(str(e["msg"]) for e in exc.errors())
        return RedirectResponse(page_url(back, purpose=purpose, error=message[:500]), 303)
    notice = f"decision #{done.id} recorded: {done.action.value.replace('_', ' ')}"
    if done.measure_id:
        notice += f" to {state.catalogue.name_of(done.measure_id)}"
    return RedirectResponse(page_url(back, purpose=purpose, notice=notice), 303)
