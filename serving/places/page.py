"""The officers' map page (`/ui/map`): the unit's cells as hexagons coloured by expected count,
drawn on the server as SVG, a week selector, and the top cells with their reasons.

Like the risk list page, nothing is read before the officer chooses the purpose of the read
(the purpose select is shown alone, pre-selecting only a purpose chosen earlier in the session),
and the read goes through the same service function as the API (`serving.places.service`),
with a `PageAccessLog`, so that the access log records the status the page answered.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from riskcast.errors import FieldError
from serving.api.deps import AccessLog, State
from serving.places.geometry import svg_map
from serving.places.routes import Hotspots
from serving.places.schemas import HotspotQuery
from serving.places.service import hotspot_response, read_unit
from serving.ui.deps import UiOfficer, UiSession
from serving.ui.officer import chosen_purpose
from serving.ui.page_log import page_access_log
from serving.ui.render import render

router = APIRouter(include_in_schema=False)
MAX_TABLE = 200
LABELLED = 10  # ranks written on the map


def parse_week(week: str | None) -> date | None:
    if not week:
        return None
    try:
        return date.fromisoformat(week)
    except ValueError:
        raise FieldError(
            ["query", "week"], f"week {week[:20]!r} is not a date YYYY-MM-DD"
        ) from None


@router.get("/ui/map", response_class=HTMLResponse)
def map_page(
    request: Request,
    user: UiOfficer,
    session: UiSession,
    state: State,
    store: Hotspots,
    access: AccessLog,
    purpose: Annotated[str | None, Query(max_length=64)] = None,
    region: Annotated[str | None, Query(max_length=64)] = None,
    district: Annotated[str | None, Query(max_length=64)] = None,
    week: Annotated[str | None, Query(max_length=20)] = None,
    top: Annotated[int, Query(ge=1, le=MAX_TABLE)] = 20,
) -> HTMLResponse:
    """The unit's hotspot map for a week, once a purpose is chosen (the read is in the access
    log with it); every cell of the unit is drawn, the ``top`` ones are listed with reasons."""
    unit = region or (user.regions[0] if user.regions else "")
    if not unit:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "you have no region")
    chosen = chosen_purpose(request, state, session, purpose)
    current = store.current()
    mine = unit in user.regions
    context: dict[str, Any] = {
        "purposes": state.settings.purposes,
        "regions": user.regions,
        # another region's districts are its facts too: none before the refused read
        "districts": list(current.units.get(unit, ())) if current and mine else [],
        "weeks": list(current.weeks) if current else [],
        "filters": {"region": unit, "district": district or "", "week": week or "", "top": top},
        "max_top": MAX_TABLE,
    }
    if chosen is None:  # nothing is read until the officer says why
        return render(request, "map.html", answer=None, purpose=session.purpose, **context)
    try:
        query = HotspotQuery(
            region=unit,
            purpose=chosen,
            district=district or None,
            week=parse_week(week),
            top=top,
        )
    except ValidationError as exc:
        problems = [
            {"loc": ["query", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()
        ]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, problems) from None
    with page_access_log(access) as log:
        read = read_unit(state, store, user, log, query, action="hotspot-map", all_cells=True)
        answer = hotspot_response(read, query, chosen)
        drawn = svg_map(
            [
                (
                    r["cell_id"],
                    r["expected_count"],
                    f"#{r['rank']} {r['cell_id']}"
                    + (f" ({r['district']})" if r["district"] else "")
                    + f": {r['expected_count']:.2f} expected "
                    f"(80 % interval {r['lower_80']:.0f} to {r['upper_80']:.0f})",
                    r["rank"],
                )
                for r in read.cells.iter_rows(named=True)
            ],
            labelled=LABELLED,
        )
        context["filters"]["week"] = answer.week.isoformat()
        return log.answer(
            render(
                request,
                "map.html",
                answer=answer,
                svg=drawn,
                labelled=min(LABELLED, read.cells.height),
                purpose=chosen,
                **context,
            )
        )
