"""Decisions and overrides: recording one with its rules, listing them, a person's history.

All SQL on the decisions table is here. Recording a decision reads the person (their unit,
their score), so it is in the access log like any read; a refused one too (status 403, 409).
The row and its access-log entry are committed in one transaction
(`serving.access_log.append_with_entry`): a decision is stored if and only if its entry is.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from features.frames.scope import outside_reasons
from riskcast.clock import utcnow
from riskcast.errors import ConflictError, FieldError, NotFoundError, StoreError
from serving.db import decisions, stop_reason
from serving.schemas import (
    DecisionAction,
    DecisionRequest,
    DecisionResponse,
    DecisionsResponse,
    LatestDecision,
    UnitSummary,
)
from serving.services.policy import check_purpose, forbid_regions
from serving.services.scores import NO_VECTOR, NOT_FOUND, answer_ids
from serving.state import AccessLogWriter, ServiceState
from serving.users import Role, User

OVERSIGHT_PURPOSE = "oversight"
"""The purpose recorded in the access log when decisions are listed (oversight of the model's
use is the only reason to read them; no purpose parameter is asked for)."""
HISTORY_LIMIT = 20
"""How many of a person's earlier decisions the person page shows."""


def _check_rules(state: ServiceState, body: DecisionRequest) -> str | None:
    """The decision's own rules (no read yet): the reason it needs, the measure it names; the
    reason, stripped (None when blank)."""
    reason = (body.reason or "").strip() or None
    if body.action is DecisionAction.disagreed and reason is None:
        raise FieldError(["body", "reason"], "disagreeing with the score needs a reason")
    if body.action is DecisionAction.referred:
        if body.measure_id not in state.catalogue.ids():
            raise FieldError(
                ["body", "measure_id"],
                f"a referral names a support measure; one of {sorted(state.catalogue.ids())}",
            )
    elif body.measure_id is not None:
        raise FieldError(["body", "measure_id"], "only a referral names a support measure")
    return reason


def record_decision(
    state: ServiceState, user: User, access: AccessLogWriter, body: DecisionRequest
) -> DecisionResponse:
    """Record what an officer did; disagreeing with the score is an override with a reason.

    Refused (each refusal after the person was looked up is logged): a person not in the
    register of the officer's regions (`NotFoundError`, 404; another region's person is
    answered the same way, logged 403), a person outside the model's population
    (`ConflictError`, 409), a disagreement while no score is given (stopped, no model: 409).
    While no score is given, other decisions are recorded without one (``score_withheld``)."""
    purpose = check_purpose(state, body.purpose, ["body", "purpose"])
    reason = _check_rules(state, body)
    if state.directory is None:
        raise StoreError(str(state.store_error))
    pid = body.person_id
    unit = state.directory.units([pid]).get(pid)
    params: dict[str, object] = {"action": body.action.value}

    def refused(code: int, why: dict[str, object]) -> None:
        """A refused decision is still a read of the person: in the access log."""
        access.append(
            actor=user.name,
            role=user.role.value,
            purpose=purpose,
            action="decision",
            persons=[pid],
            params={**params, **why},
            model_version=state.model.version if state.model else None,
            status=code,
        )

    if unit is None or unit[0] not in user.regions:
        if unit is not None:  # another region's person: answered like an unknown id, logged
            refused(403, {"refused": "outside the officer's regions, answered 404"})
        raise NotFoundError(f"person {pid!r}: {NOT_FOUND}")
    probability = tier = version = withheld = None
    if state.model is not None and state.store is not None:  # scope: no scoring needed
        why = outside_reasons(state.store.get_vectors([pid]), state.model.scope).to_list()
        if why and why[0] is not None:
            refused(409, {"outside_population": 1})
            raise ConflictError(
                f"person {pid!r} is outside the model's population ({why[0]}): there is no "
                "score to record a decision on"
            )
    stopped = stop_reason(state.engine)
    if stopped is not None:  # no score from a stopped model, on any path
        withheld = f"scoring is stopped: {stopped}"
    elif state.model is None or state.store is None:
        withheld = f"no model is served: {state.model_error or state.store_error}"
    else:
        scored = answer_ids(state, state.model, user, [pid]).scored.get(pid)
        if scored is not None:
            probability, tier = scored.probability, scored.tier
            version = state.model.version
        else:
            withheld = NO_VECTOR
    if withheld is not None and body.action is DecisionAction.disagreed:
        refused(409, {"score_withheld": withheld})
        raise ConflictError(
            f"disagreeing needs a score to disagree with, and none is given now ({withheld}); "
            "record the decision itself (contacted, referred, no_action)"
        )
    if withheld is not None:
        params["score_withheld"] = withheld
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
    from serving.access_log import append_with_entry

    def insert_decision(conn: sa.Connection) -> int:
        """The decision row, written in its access-log entry's transaction: a decision is
        stored if and only if its entry is (a crash or a failed log write leaves neither)."""
        inserted = conn.execute(sa.insert(decisions).values(**values)).inserted_primary_key
        return int(inserted[0]) if inserted else 0

    new_id = append_with_entry(
        access,
        state.engine,
        insert_decision,
        {
            "actor": user.name,
            "role": user.role.value,
            "purpose": purpose,
            "action": "decision",
            "persons": [body.person_id],
            "params": params,
            "model_version": version,
            "status": 201,
        },
    )
    return DecisionResponse.model_validate(
        {"id": int(new_id), **values, "score_withheld": withheld}
    )


def list_decisions(
    state: ServiceState,
    user: User,
    access: AccessLogWriter,
    *,
    region: str | None = None,
    overrides_only: bool = False,
    limit: int = 100,
) -> DecisionsResponse:
    """Decisions and overrides per unit (officers: their regions only) and the latest ``limit``
    ones. The listing names persons, so it appends its access-log entry (purpose
    ``oversight``, the persons listed), or the 403 of an officer asking for another region."""
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


def person_decisions(
    state: ServiceState, person_id: str, limit: int = HISTORY_LIMIT
) -> list[dict[str, Any]]:
    """A person's latest decisions, newest first, as rows of the decisions table. Not logged
    here: only the person page calls it, for a person whose read it has just logged."""
    with state.engine.connect() as conn:
        rows = (
            conn.execute(
                sa.select(decisions)
                .where(decisions.c.person_id == person_id)
                .order_by(decisions.c.id.desc())
                .limit(limit)
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


def latest_decisions(state: ServiceState, person_ids: list[str]) -> dict[str, LatestDecision]:
    """Per person with any decision, the newest one (highest id): what a list row shows, so
    that two officers do not act on the same person twice. Not logged here: only lists call
    it, for persons whose read they log."""
    if not person_ids:
        return {}
    newest = (
        sa.select(sa.func.max(decisions.c.id).label("id"))
        .where(decisions.c.person_id.in_(person_ids))
        .group_by(decisions.c.person_id)
        .subquery()
    )
    query = sa.select(
        decisions.c.id,
        decisions.c.person_id,
        decisions.c.action,
        decisions.c.recorded_at,
        decisions.c.officer,
        decisions.c.measure_id,
    ).join(newest, decisions.c.id == newest.c.id)
    with state.engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return {
        r["person_id"]: LatestDecision.model_validate(
            {k: r[k] for k in ("id", "action", "recorded_at", "officer", "measure_id")}
        )
        for r in rows
    }


def decided_persons(state: ServiceState, region: str) -> set[str]:
    """The persons of a region with at least one decision (a list's "no decision yet" filter
    leaves them out)."""
    query = sa.select(decisions.c.person_id).where(decisions.c.region == region).distinct()
    with state.engine.connect() as conn:
        return {str(pid) for pid in conn.execute(query).scalars()}


__all__ = [
    "OVERSIGHT_PURPOSE",
    "decided_persons",
    "latest_decisions",
    "list_decisions",
    "person_decisions",
    "record_decision",
]
