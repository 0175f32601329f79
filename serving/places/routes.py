"""`GET /v1/hotspots`: a unit's ranked cells for a week, as JSON, CSV or GeoJSON.

The rules (purpose, regions, the week, the stop switch) and the access logging are the
service layer's (`serving.places.service`); this route adds only what belongs to HTTP: the
query model and the rendering of the formats.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from serving.api.deps import AccessLog, Officer, State
from serving.places.schemas import HotspotQuery, HotspotResponse
from serving.places.service import hotspot_csv, hotspot_geojson, hotspot_response, read_unit
from serving.places.store import HotspotStore
from serving.schemas import error_responses

router = APIRouter(prefix="/v1", tags=["places"])


def hotspot_store(request: Request, state: State) -> HotspotStore:
    """The hotspot store on the service's engine, its tables created once per app."""
    store: HotspotStore | None = getattr(request.app.state, "hotspots", None)
    if store is None or store.engine is not state.engine:
        store = HotspotStore(state.engine).create()
        request.app.state.hotspots = store
    return store


Hotspots = Annotated[HotspotStore, Depends(hotspot_store)]


@router.get(
    "/hotspots",
    response_model=HotspotResponse,
    responses={
        200: {"content": {"text/csv": {}, "application/geo+json": {}}},
        **error_responses(401, 403, 503),
    },
)
def get_hotspots(
    user: Officer,
    state: State,
    store: Hotspots,
    access: AccessLog,
    query: Annotated[HotspotQuery, Query()],
) -> HotspotResponse | Response:
    """The cells of a region (or one district) for one forecast week, ranked by expected
    count, with the 80 % interval, the top reasons in plain language and each cell's polygon
    (GeoJSON, [lon, lat]). The read is in the access log with its purpose and the model
    version. ``format=csv`` and ``format=geojson`` (a FeatureCollection) export the same
    cells. A week outside the materialized horizon, a region or district without cells: 422
    naming the field; another region: 403; nothing materialized or scoring stopped: 503."""
    read = read_unit(state, store, user, access, query)
    answer = hotspot_response(read, query, query.purpose)
    if query.format == "csv":
        return Response(hotspot_csv(answer), media_type="text/csv")
    if query.format == "geojson":
        collection = hotspot_geojson(answer)
        return JSONResponse(collection.model_dump(mode="json"), media_type="application/geo+json")
    return answer
