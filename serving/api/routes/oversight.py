"""Oversight: decisions and overrides, the champion's model card, the stop switch.

Recording a decision and listing decisions read person-level data: both are in the access log
(the listing with the purpose ``oversight``, the persons listed and its parameters). Their
rules and SQL are the service layer's (`serving.services.decisions`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from serving.api.deps import AccessLog, Admin, AnyRole, Officer, Overseer, State
from serving.db import stop_reason
from serving.schemas import (
    NO_NUL,
    DecisionRequest,
    DecisionResponse,
    DecisionsResponse,
    ModelCard,
    StopRequest,
    StopStatus,
    error_responses,
)
from serving.services.decisions import list_decisions, record_decision
from serving.services.oversight import resume_scoring, stop_scoring

router = APIRouter(prefix="/v1", tags=["oversight"])


@router.post(
    "/decisions",
    response_model=DecisionResponse,
    status_code=201,
    responses=error_responses(
        401,
        503,
        described={
            403: "not an officer",
            404: "no such person in the register of your regions (another region's person is "
            "answered the same way; the attempt is logged)",
            409: "the person is outside the model's population, or disagreeing while no score "
            "is given (stopped, no model): logged",
        },
    ),
)
def post_decision(
    body: DecisionRequest, user: Officer, state: State, access: AccessLog
) -> DecisionResponse:
    """Record what an officer did; disagreeing with the score is an override with a reason."""
    return record_decision(state, user, access, body)


@router.get(
    "/decisions",
    response_model=DecisionsResponse,
    responses=error_responses(
        401,
        503,
        described={403: "data scientists, or an officer asking for another region (logged)"},
    ),
)
def get_decisions(
    user: Overseer,
    state: State,
    access: AccessLog,
    region: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    overrides_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DecisionsResponse:
    """Decisions and overrides per unit (officers: their regions only) and the latest ones.

    The listing names persons, so it is in the access log (purpose ``oversight``)."""
    return list_decisions(
        state, user, access, region=region, overrides_only=overrides_only, limit=limit
    )


@router.get(
    "/models/champion",
    response_model=ModelCard,
    responses=error_responses(401, described={503: "no champion is loaded"}),
)
def get_champion(user: AnyRole, state: State) -> ModelCard:
    """The model card of the version being served."""
    if state.model is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"no model: {state.model_error}")
    m = state.model
    return ModelCard(
        name=m.name,
        version=m.version,
        alias=m.alias,
        tiers={t.name: t.min_probability for t in m.model.tiers},
        features=[
            {
                "name": f.name,
                "domain": f.domain,
                "kind": f.kind,
                "direction": f.direction,
                "description": f.description,
            }
            for f in m.model.features
        ],
        calibration=getattr(m.model.calibrator, "method", None),
        card_markdown=m.card,
    )


_ADMIN_ONLY = error_responses(401, 503, described={403: "admins only"})


@router.post("/admin/stop", response_model=StopStatus, responses=_ADMIN_ONLY)
def stop(body: StopRequest, user: Admin, state: State) -> StopStatus:
    """Withdraw the model from serving at once (all workers share the switch)."""
    return StopStatus(stopped=True, reason=stop_scoring(state, user, body.reason))


@router.post("/admin/resume", response_model=StopStatus, responses=_ADMIN_ONLY)
def resume(user: Admin, state: State) -> StopStatus:
    """Serve the champion again after a stop."""
    resume_scoring(state, user)
    return StopStatus(stopped=False, reason=None)


@router.get("/admin/stop", response_model=StopStatus, responses=_ADMIN_ONLY)
def stop_status(user: Admin, state: State) -> StopStatus:
    """Whether scoring is stopped, and why."""
    reason = stop_reason(state.engine)
    return StopStatus(stopped=reason is not None, reason=reason)


__all__ = ["router"]
