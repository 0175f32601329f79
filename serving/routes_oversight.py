"""Oversight: decisions and overrides, the champion's model card, the stop switch."""

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
    DecisionAction,
    DecisionRequest,
    DecisionResponse,
    DecisionsResponse,
    ModelCard,
    StopRequest,
    StopStatus,
    UnitSummary,
)
from serving.users import Role

router = APIRouter(prefix="/v1", tags=["oversight"])


@router.post("/decisions", response_model=DecisionResponse, status_code=201)
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


@router.get("/decisions", response_model=DecisionsResponse)
def get_decisions(
    user: Overseer,
    state: State,
    region: Annotated[str | None, Query(max_length=64)] = None,
    overrides_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DecisionsResponse:
    """Decisions and overrides per unit (officers: their regions only) and the latest ones."""
    query = sa.select(decisions)
    if user.role is Role.officer:
        if region is not None and region not in user.regions:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"region {region!r} is not yours")
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
    return DecisionsResponse(units=list(units.values()), decisions=listed)


@router.get("/models/champion", response_model=ModelCard)
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


@router.post("/admin/stop", response_model=StopStatus)
def stop(body: StopRequest, user: Admin, state: State) -> StopStatus:
    """Withdraw the model from serving at once (all workers share the switch)."""
    set_stop(state.engine, stopped=True, by=user.name, reason=body.reason)
    return StopStatus(stopped=True, reason=stop_reason(state.engine))


@router.post("/admin/resume", response_model=StopStatus)
def resume(user: Admin, state: State) -> StopStatus:
    set_stop(state.engine, stopped=False, by=user.name, reason="")
    return StopStatus(stopped=False, reason=None)


@router.get("/admin/stop", response_model=StopStatus)
def stop_status(user: Admin, state: State) -> StopStatus:
    reason = stop_reason(state.engine)
    return StopStatus(stopped=reason is not None, reason=reason)


__all__ = ["check_purpose", "router"]
