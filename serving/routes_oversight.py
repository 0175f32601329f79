"""Oversight: decisions and overrides, the champion's model card, the stop switch.

Recording a decision and listing decisions read person-level data: both are in the access log
(the listing with the purpose ``oversight``, the persons listed and its parameters).
"""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, status

from serving.auth import (
    AccessLog,
    Admin,
    AnyRole,
    Officer,
    Overseer,
    State,
    check_purpose,
    field_error,
    forbid_regions,
)
from serving.db import decisions, set_stop, stop_reason, utcnow
from serving.explain import score_vectors
from serving.schemas import (
    NO_NUL,
    DecisionAction,
    DecisionRequest,
    DecisionResponse,
    DecisionsResponse,
    ModelCard,
    StopRequest,
    StopStatus,
    UnitSummary,
    error_responses,
)
from serving.state import AccessLogWriter, ServiceState
from serving.users import Role, User

router = APIRouter(prefix="/v1", tags=["oversight"])
OVERSIGHT_PURPOSE = "oversight"
"""The purpose recorded in the access log when decisions are listed (oversight of the model's
use is the only reason to read them; no purpose parameter is asked for)."""


@router.post(
    "/decisions",
    response_model=DecisionResponse,
    status_code=201,
    responses=error_responses(
        401,
        503,
        described={
            403: "not an officer, or the person is outside your regions (logged)",
            404: "the person is not in the register",
        },
    ),
)
def post_decision(
    body: DecisionRequest, user: Officer, state: State, access: AccessLog
) -> DecisionResponse:
    """Record what an officer did; disagreeing with the score is an override with a reason."""
    purpose = check_purpose(state, body.purpose, ["body", "purpose"])
    reason = (body.reason or "").strip() or None
    if body.action is DecisionAction.disagreed and reason is None:
        raise field_error(["body", "reason"], "disagreeing with the score needs a reason")
    if body.action is DecisionAction.referred:
        if body.measure_id not in state.catalogue.ids():
            raise field_error(
                ["body", "measure_id"],
                f"a referral names a support measure; one of {sorted(state.catalogue.ids())}",
            )
    elif body.measure_id is not None:
        raise field_error(["body", "measure_id"], "only a referral names a support measure")
    if state.directory is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(state.store_error))
    unit = state.directory.units([body.person_id]).get(body.person_id)
    if unit is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"person {body.person_id!r} is unknown")
    version = state.model.version if state.model else None
    params = {"action": body.action.value}
    if unit[0] not in user.regions:
        forbid_regions(
            user,
            [body.person_id],
            access,
            purpose=purpose,
            action="decision",
            params=params,
            model_version=version,
        )
    probability = tier = None
    if state.model is not None and state.store is not None:
        vec = state.store.get_vectors([body.person_id])
        scored = score_vectors(state.model.model, vec, state.catalogue)
        if scored:
            probability, tier = scored[0].probability, scored[0].tier
    values = dict(
        recorded_at=utcnow(),
        officer=user.name,
        person_id=body.person_id,
        region=unit[0],
        district=unit[1],
        action=body.action.value,
        measure_id=body.measure_id,
        reason=reason,
        override=body.action is DecisionAction.disagreed,
        model_version=version,
        probability=probability,
        tier=tier,
    )
    with state.engine.begin() as conn:
        inserted = conn.execute(sa.insert(decisions).values(**values)).inserted_primary_key
    new_id = inserted[0] if inserted else 0
    access.append(
        actor=user.name,
        role=user.role.value,
        purpose=purpose,
        action="decision",
        persons=[body.person_id],
        params=params,
        model_version=version,
        status=201,
    )
    return DecisionResponse.model_validate({"id": int(new_id), **values})


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
    return decisions_view(
        user, state, access, region=region, overrides_only=overrides_only, limit=limit
    )


def decisions_view(
    user: User,
    state: ServiceState,
    access: AccessLogWriter,
    *,
    region: str | None,
    overrides_only: bool,
    limit: int,
) -> DecisionsResponse:
    """The listing behind `GET /v1/decisions` and the audit page; appends its access-log entry
    (the persons of the decisions listed), or the 403 of an officer asking for another region."""
    version = state.model.version if state.model else None
    params = {"region": region, "overrides_only": overrides_only, "limit": limit}
    query = sa.select(decisions)
    if user.role is Role.officer:
        if region is not None and region not in user.regions:
            forbid_regions(
                user,
                [f"region:{region}"],
                access,
                purpose=OVERSIGHT_PURPOSE,
                action="decisions",
                params=params,
                model_version=version,
            )
        query = query.where(decisions.c.region.in_(list(user.regions)))
    if region is not None:
        query = query.where(decisions.c.region == region)
    if overrides_only:
        query = query.where(decisions.c.override.is_(True))
    with state.engine.connect() as conn:
        rows = conn.execute(query.order_by(decisions.c.id.desc())).mappings().all()
    units: dict[tuple[str, str | None], UnitSummary] = {}
    for r in rows:
        u = units.setdefault(
            (r["region"], r["district"]),
            UnitSummary(
                region=r["region"], district=r["district"], decisions=0, overrides=0, by_action={}
            ),
        )
        u.decisions += 1
        u.overrides += int(bool(r["override"]))
        u.by_action[r["action"]] = u.by_action.get(r["action"], 0) + 1
    listed = [DecisionResponse.model_validate(dict(r)) for r in rows[:limit]]
    access.append(
        actor=user.name,
        role=user.role.value,
        purpose=OVERSIGHT_PURPOSE,
        action="decisions",
        persons=list(dict.fromkeys(d.person_id for d in listed)),
        params={**params, "listed": len(listed)},
        model_version=version,
        status=200,
    )
    return DecisionsResponse(units=list(units.values()), decisions=listed)


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
    set_stop(state.engine, stopped=True, by=user.name, reason=body.reason)
    return StopStatus(stopped=True, reason=stop_reason(state.engine))


@router.post("/admin/resume", response_model=StopStatus, responses=_ADMIN_ONLY)
def resume(user: Admin, state: State) -> StopStatus:
    """Serve the champion again after a stop."""
    set_stop(state.engine, stopped=False, by=user.name, reason="")
    return StopStatus(stopped=False, reason=None)


@router.get("/admin/stop", response_model=StopStatus, responses=_ADMIN_ONLY)
def stop_status(user: Admin, state: State) -> StopStatus:
    """Whether scoring is stopped, and why."""
    reason = stop_reason(state.engine)
    return StopStatus(stopped=reason is not None, reason=reason)


__all__ = ["check_purpose", "router"]
