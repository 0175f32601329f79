"""Person-level reads: explained scores and risk lists (every read is in the access log).

The rules (purpose, regions, population, the per-role list limits) and the logging are the
service layer's (`serving.services.scores`, `serving.services.lists`); these routes only add
what belongs to HTTP: the request-size limit on ids and the CSV rendering of a list.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response

from serving.api.deps import AccessLog, Champion, Officer, State
from serving.schemas import RiskListResponse, ScoreRequest, ScoreResponse
from serving.services.lists import risk_list, risk_list_csv
from serving.services.scores import score_persons

router = APIRouter(prefix="/v1", tags=["scores"])


@router.post(
    "/scores",
    response_model=ScoreResponse,
    responses={
        413: {"description": "> max ids"},
        503: {"description": "no champion, stopped, or nothing materialised in the online store"},
    },
)
def post_scores(
    body: ScoreRequest, user: Officer, state: State, champion: Champion, access: AccessLog
) -> ScoreResponse:
    """Calibrated probability, tier and explanation per person id inside the model's
    population; ``outside_population`` (with why) for persons outside it; ``unknown`` for ids
    not in the register of your regions (another region's ids are answered the same way)."""
    if len(body.ids) > state.settings.max_ids:
        raise HTTPException(
            413,
            f"ids: at most {state.settings.max_ids} person ids per request, got {len(body.ids)}",
        )
    return score_persons(state, champion, user, access, body.ids, body.purpose)


@router.get(
    "/risk-lists",
    response_model=RiskListResponse,
    responses={
        200: {"content": {"text/csv": {}}},
        403: {"description": "not your region"},
        503: {"description": "no champion, stopped, or nothing materialised in the online store"},
    },
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
    capacity: Annotated[
        int,
        Query(ge=1, le=100_000, description="list size; at most your role's maximum (422 above)"),
    ] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    limit: Annotated[
        int, Query(ge=1, le=1000, description="page size; at most your role's maximum")
    ] = 50,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
    undecided: Annotated[
        bool, Query(description="only persons with no decision recorded yet")
    ] = False,
) -> RiskListResponse | Response:
    """Persons of a region/district inside the model's population, ranked by probability, with
    their top reasons and latest decision; persons outside the population are counted, never
    listed. ``meaning`` says what the probability is of (event, horizon), the base rate and
    the tiers' bands. A ``capacity`` or ``limit`` above your role's maximum is a 422 naming
    the limit; an online store with nothing materialised is a 503 saying so."""
    listing = risk_list(
        state,
        champion,
        user,
        access,
        region=region,
        purpose=purpose,
        district=district,
        tiers=tier,
        capacity=capacity,
        offset=offset,
        limit=limit,
        output=format,
        undecided_only=undecided,
    )
    if format == "csv":
        return Response(
            risk_list_csv(listing),
            media_type="text/csv",
            headers={
                "X-Riskcast-In-Population": str(listing.in_population),
                "X-Riskcast-Outside-Population": str(listing.outside_population),
            },
        )
    return listing
