"""Hotspot reads: the one place that decides what the service may answer about places.

`GET /v1/hotspots` and the map page both call `read_unit`, so the rules hold on both doors:

- a purpose this deployment allows (`serving.services.policy.check_purpose`), written to the
  access log with the read, like every read of person-level scores: forecasts of places steer
  patrols and so attention to people, and auditors must be able to see who looked and why;
- an officer reads only their own regions; another region is a 403, itself logged first;
- the stop switch stops place forecasts too (503), and a store with nothing materialised is a
  503 saying how to materialise, never an empty map that reads as "nothing will happen";
- a region without cells, a district the region does not have, and a week outside the
  materialised horizon are 422s naming the field and saying what is there.

Each read appends one entry: action ``hotspots`` (API) or ``hotspot-map`` (page), no persons,
the model version in ``model_version`` and its name, the unit, the week and the cells served
in ``params``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl

from riskcast.errors import FieldError, ForbiddenError, StoreError
from serving.db import stop_reason
from serving.places.geometry import cell_ring
from serving.places.schemas import (
    Feature,
    HotspotCell,
    HotspotCollection,
    HotspotQuery,
    HotspotReason,
    HotspotResponse,
    Polygon,
)
from serving.places.store import HotspotMaterialization, HotspotStore
from serving.services.policy import check_purpose
from serving.state import AccessLogWriter, ServiceState
from serving.users import User

NOTHING_MATERIALIZED = (
    "no places forecast is materialized, so no hotspot can be ranked (this is not an empty "
    "map: nothing has been forecast); run `riskcast places materialize` on this database"
)
STRONG, MODERATE = 0.5, 0.15
"""Contributions (log of the expected count) in words: 0.5 is about ×1.65, 0.15 about ×1.16."""


@dataclass(frozen=True)
class UnitWeek:
    """What a read found: the materialisation, the week asked for and the unit's cells."""

    materialization: HotspotMaterialization
    week: date
    horizon: int
    cells: pl.DataFrame  # store.unit_week's columns, ranked
    cells_in_unit: int
    expected_in_unit: float


def current_or_none(state: ServiceState, store: HotspotStore) -> HotspotMaterialization | None:
    reason = stop_reason(state.engine)
    if reason is not None:
        raise StoreError(f"scoring is stopped: {reason}")
    return store.current()


def check_unit(materialization: HotspotMaterialization, region: str, district: str | None) -> None:
    """422 naming ``region`` or ``district`` when the materialisation has no cells there."""
    if region not in materialization.units:
        known = ", ".join(sorted(materialization.units)) or "none"
        raise FieldError(
            ["query", "region"],
            f"region {region!r} has no cells in the materialized forecast "
            f"(regions with cells: {known})",
        )
    districts = materialization.units[region]
    if district is not None and district not in districts:
        raise FieldError(
            ["query", "district"],
            f"district {district!r} has no cells in region {region!r} "
            f"(districts with cells: {', '.join(districts) or 'none'})",
        )


def check_week(materialization: HotspotMaterialization, week: date | None) -> tuple[date, int]:
    """The week asked for (default the first) and its horizon; 422 naming ``week`` otherwise."""
    weeks = materialization.weeks
    if week is None:
        return weeks[0], 1
    if week in weeks:
        return week, weeks.index(week) + 1
    if week > weeks[-1]:
        problem = f"is beyond the materialized horizon (the last week starts {weeks[-1]})"
    elif week < weeks[0]:
        problem = f"is before the first forecast week ({weeks[0]}, the forecast is as of " + (
            f"{materialization.as_of})"
        )
    else:
        problem = "is not the start (a Monday) of a materialized week"
    listed = ", ".join(w.isoformat() for w in weeks)
    raise FieldError(["query", "week"], f"week {week} {problem}; weeks: {listed}")


def read_unit(
    state: ServiceState,
    store: HotspotStore,
    user: User,
    access: AccessLogWriter,
    query: HotspotQuery,
    *,
    action: str = "hotspots",
    all_cells: bool = False,
) -> UnitWeek:
    """The unit's ranked cells for the week (the ``top`` ones, or all with ``all_cells``),
    after every rule of the module's docstring; the read is appended to ``access``."""
    purpose = check_purpose(state, query.purpose, ["query", "purpose"])
    found = current_or_none(state, store)
    params: dict[str, Any] = {
        "region": query.region,
        "district": query.district,
        "week": query.week,
        "top": query.top,
        "format": query.format,
        "model": found.model_name if found else None,
    }
    if query.region not in user.regions:
        access.append(
            actor=user.name,
            role=user.role.value,
            purpose=purpose,
            action=action,
            persons=[],
            params={**params, "refused": "outside the officer's regions"},
            model_version=found.model_version if found else None,
            status=403,
        )
        raise ForbiddenError(
            f"region {query.region!r} is outside your regions ({', '.join(user.regions)})"
        )
    if found is None:
        raise StoreError(NOTHING_MATERIALIZED)
    check_unit(found, query.region, query.district)
    week, horizon = check_week(found, query.week)
    cells = store.unit_week(
        found, query.region, query.district, week, None if all_cells else query.top
    )
    count, total = store.unit_totals(found, query.region, query.district, week)
    served = cells.head(query.top)["cell_id"].to_list()
    access.append(
        actor=user.name,
        role=user.role.value,
        purpose=purpose,
        action=action,
        persons=[],
        params={
            **params,
            "week": week,
            "horizon": horizon,
            "as_of": found.as_of,
            "cells": served,
            "cells_drawn": cells.height,
        },
        model_version=found.model_version,
        status=200,
    )
    return UnitWeek(found, week, horizon, cells, count, total)


# ---- reasons in words ---------------------------------------------------------------------
def effect(contribution: float) -> str:
    size = abs(contribution)
    word = "strongly" if size >= STRONG else "moderately" if size >= MODERATE else "slightly"
    return f"{'raises' if contribution >= 0 else 'lowers'} the forecast {word}"


def value_text(value: float | None) -> str:
    if value is None:
        return "no value"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def reasons_of(text: str) -> list[HotspotReason]:
    """The forecast's reasons (JSON), each with a sentence a patrol planner can read."""
    found = []
    for r in json.loads(text):
        description = str(r.get("description") or r.get("feature", "")).strip()
        value = r.get("value")
        value = float(value) if isinstance(value, (int, float)) else None
        contribution = float(r.get("contribution") or 0.0)
        found.append(
            HotspotReason(
                feature=str(r.get("feature", "")),
                description=description,
                value=value,
                contribution=contribution,
                sentence=f"{description[:1].upper()}{description[1:]}: {value_text(value)} "
                f"({effect(contribution)})",
            )
        )
    return found


# ---- answers ------------------------------------------------------------------------------
def hotspot_cells(frame: pl.DataFrame) -> list[HotspotCell]:
    return [
        HotspotCell(
            rank=r["rank"],
            cell_id=r["cell_id"],
            h3_resolution=r["h3_resolution"],
            region=r["region"],
            district=r["district"],
            lat=r["lat"],
            lon=r["lon"],
            area_km2=r["area_km2"],
            week_start=r["week_start"],
            horizon=r["horizon"],
            expected_count=r["expected_count"],
            lower_80=r["lower_80"],
            upper_80=r["upper_80"],
            reasons=reasons_of(r["reasons"]),
            polygon=Polygon(coordinates=[[(p[0], p[1]) for p in cell_ring(r["cell_id"])]]),
        )
        for r in frame.iter_rows(named=True)
    ]


def hotspot_response(read: UnitWeek, query: HotspotQuery, purpose: str) -> HotspotResponse:
    m = read.materialization
    return HotspotResponse(
        model_name=m.model_name,
        model_version=m.model_version,
        as_of=m.as_of,
        materialized_at=m.materialized_at,
        region=query.region,
        district=query.district,
        week=read.week,
        horizon=read.horizon,
        weeks=list(m.weeks),
        purpose=purpose,
        cells_in_unit=read.cells_in_unit,
        expected_in_unit=read.expected_in_unit,
        top=query.top,
        cells=hotspot_cells(read.cells.head(query.top)),
    )


CSV_COLUMNS = (
    "rank", "cell_id", "h3_resolution", "region", "district", "lat", "lon", "area_km2",
    "week_start", "horizon", "expected_count", "lower_80", "upper_80", "reasons",
)  # fmt: skip


def hotspot_csv(answer: HotspotResponse) -> str:
    """The answer as CSV, after ``#`` lines saying what it is (pandas: ``comment="#"``)."""
    out = io.StringIO()
    unit = answer.region + (f"/{answer.district}" if answer.district else "")
    out.write(
        f"# hotspots of {unit}, week starting {answer.week} (horizon {answer.horizon}), "
        f"{answer.model_name} version {answer.model_version}, as of {answer.as_of}\n"
    )
    out.write(
        f"# expected incidents registered in the week; 80 % interval; top {len(answer.cells)} "
        f"of {answer.cells_in_unit} cells ({answer.expected_in_unit:.2f} expected in all)\n"
    )
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for c in answer.cells:
        writer.writerow(
            [
                c.rank, c.cell_id, c.h3_resolution, c.region, c.district or "",
                f"{c.lat:.6f}", f"{c.lon:.6f}", f"{c.area_km2:.4f}", c.week_start.isoformat(),
                c.horizon, f"{c.expected_count:.4f}", f"{c.lower_80:.4f}", f"{c.upper_80:.4f}",
                " | ".join(r.sentence for r in c.reasons),
            ]
        )  # fmt: skip
    return out.getvalue()


def hotspot_geojson(answer: HotspotResponse) -> HotspotCollection:
    """The answer as a GeoJSON FeatureCollection: one Feature per cell, its polygon and its
    forecast (reasons as sentences) in ``properties``."""
    features = [
        Feature(
            id=c.cell_id,
            geometry=c.polygon,
            properties={
                **c.model_dump(mode="json", exclude={"polygon", "reasons"}),
                "reasons": [r.sentence for r in c.reasons],
            },
        )
        for c in answer.cells
    ]
    meta = answer.model_dump(mode="json", exclude={"cells"})
    return HotspotCollection(features=features, metadata=meta)
