"""Person-level reads: explained scores and risk lists (every read is in the access log)."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Literal

import numpy as np
import polars as pl
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response

from serving.auth import AccessLog, Champion, Officer, State, check_purpose, forbid_regions
from serving.explain import ranked_with_reasons, score_vectors
from serving.schemas import PersonScore, RiskListResponse, RiskListRow, ScoreRequest, ScoreResponse
from serving.scorebook import scored_from_book

router = APIRouter(prefix="/v1", tags=["scores"])
PAGE_SCHEMA: dict[str, pl.DataType] = {
    "rank": pl.Int64(),
    "person_id": pl.String(),
    "probability": pl.Float64(),
    "tier": pl.String(),
    "top_reasons": pl.List(pl.String()),
}


@router.post(
    "/scores",
    response_model=ScoreResponse,
    responses={
        403: {"description": "outside your regions"},
        413: {"description": "> max ids"},
        503: {"description": "no champion or stopped"},
    },
)
def post_scores(
    body: ScoreRequest, user: Officer, state: State, champion: Champion, access: AccessLog
) -> ScoreResponse:
    """Calibrated probability, tier and explanation per person id (unknown ids per id)."""
    if len(body.ids) > state.settings.max_ids:
        raise HTTPException(
            413,
            f"ids: at most {state.settings.max_ids} person ids per request, got {len(body.ids)}",
        )
    purpose = check_purpose(state, body.purpose, ["body", "purpose"])
    assert state.directory is not None and state.store is not None  # checked by Champion
    ids = list(dict.fromkeys(body.ids))
    units = state.directory.units(ids)
    params = {"ids": len(ids)}
    outside = [i for i in ids if i in units and units[i][0] not in user.regions]
    forbid_regions(
        user,
        outside,
        access,
        purpose=purpose,
        action="scores",
        params=params,
        model_version=champion.version,
    )
    known = [i for i in ids if i in units]
    book = state.book()
    if book is not None and book.model_version == champion.version:
        scored = {
            pid: scored_from_book(book, row, champion.model, state.catalogue)
            for pid, row in book.rows(known).items()
        }
    else:
        vectors = state.store.get_vectors(known)
        scored = {s.person_id: s for s in score_vectors(champion.model, vectors, state.catalogue)}
    results: list[PersonScore] = []
    for pid in ids:
        s = scored.get(pid)
        if s is None:
            why = "not in the register" if pid not in units else "no feature vector online"
            results.append(PersonScore(person_id=pid, status="unknown", message=why))
            continue
        results.append(
            PersonScore(
                person_id=pid,
                status="scored",
                probability=s.probability,
                tier=s.tier,
                model_version=champion.version,
                features_as_of=s.features_as_of,
                explanation=s.explanation,
            )
        )
    if state.metrics is not None:
        state.metrics.scores_served(len(scored), "scores")
    access.append(
        actor=user.name,
        role=user.role.value,
        purpose=purpose,
        action="scores",
        persons=list(scored),
        params=params,
        model_version=champion.version,
        status=200,
    )
    return ScoreResponse(model_version=champion.version, purpose=purpose, results=results)


@router.get(
    "/risk-lists",
    response_model=RiskListResponse,
    responses={200: {"content": {"text/csv": {}}}, 403: {"description": "not your region"}},
)
def get_risk_list(
    user: Officer,
    state: State,
    champion: Champion,
    access: AccessLog,
    region: Annotated[str, Query(min_length=1, max_length=64)],
    purpose: Annotated[str, Query(description="one of the configured purposes")],
    district: Annotated[str | None, Query(max_length=64)] = None,
    tier: Annotated[list[str] | None, Query(description="keep these tiers")] = None,
    capacity: Annotated[int, Query(ge=1, le=100_000)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> RiskListResponse | Response:
    """Persons of a region/district ranked by probability, with their top reasons."""
    purpose = check_purpose(state, purpose, ["query", "purpose"])
    tiers = [t.name for t in champion.model.tiers]
    for t in tier or []:
        if t not in tiers:
            from serving.auth import field_error

            raise field_error(["query", "tier"], f"unknown tier {t!r}; tiers are {tiers}")
    params = {
        "region": region,
        "district": district,
        "tier": tier,
        "capacity": capacity,
        "offset": offset,
        "limit": limit,
        "format": format,
    }
    assert state.directory is not None and state.store is not None
    if region not in user.regions:
        forbid_regions(
            user,
            [f"region:{region}"],
            access,
            purpose=purpose,
            action="risk-list",
            params=params,
            model_version=champion.version,
        )
    book = state.book()
    if book is not None and book.model_version == champion.version:
        listed = book.ranked(region, district, tier)[:capacity]
        chosen = listed[offset : offset + limit]
        page = pl.DataFrame(
            {
                "rank": np.arange(offset + 1, offset + 1 + chosen.size),
                "person_id": book.person_ids[chosen].astype(str),
                "probability": book.probability[chosen],
                "tier": book.tier[chosen].astype(str),
                "top_reasons": book.reasons(champion.model, chosen),
            },
            schema=PAGE_SCHEMA,
        )
        total = int(listed.size)
    else:
        members = state.directory.members(region, district)
        ranked = ranked_with_reasons(champion.model, state.store.get_vectors(members))
        if tier:
            ranked = ranked.filter(ranked["tier"].is_in(tier))
        ranked = ranked.head(capacity).with_row_index("rank", offset=1)
        page = ranked.slice(offset, limit)
        total = ranked.height
    units = state.directory.units(page["person_id"].to_list())
    rows = [
        RiskListRow(
            rank=int(r["rank"]),
            person_id=r["person_id"],
            region=units[r["person_id"]][0],
            district=units[r["person_id"]][1],
            probability=r["probability"],
            tier=r["tier"],
            top_reasons=r["top_reasons"],
        )
        for r in page.iter_rows(named=True)
    ]
    if state.metrics is not None:
        state.metrics.scores_served(len(rows), "risk-list")
    access.append(
        actor=user.name,
        role=user.role.value,
        purpose=purpose,
        action="risk-list",
        persons=[r.person_id for r in rows],
        params=params,
        model_version=champion.version,
        status=200,
    )
    if format == "csv":
        return Response(_csv(rows), media_type="text/csv")
    return RiskListResponse(
        model_version=champion.version,
        region=region,
        district=district,
        tiers=tier,
        capacity=capacity,
        total=total,
        offset=offset,
        limit=limit,
        rows=rows,
    )


def _csv(rows: list[RiskListRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["rank", "person_id", "region", "district", "probability", "tier", "top_reasons"]
    )
    for r in rows:
        writer.writerow(
            [
                r.rank,
                r.person_id,
                r.region,
                r.district or "",
                f"{r.probability:.6f}",
                r.tier,
                " | ".join(r.top_reasons),
            ]
        )
    return out.getvalue()
