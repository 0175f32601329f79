"""The hotspot API's typed query and answers (`GET /v1/hotspots`).

The query is one model (`HotspotQuery`, FastAPI reads it from the query string and refuses
unknown parameters); the answers are separate models: `HotspotResponse` (JSON),
`HotspotCollection` (GeoJSON, RFC 7946). A cell's polygon is a GeoJSON Polygon of [lon, lat]
positions with a closed ring (`serving.places.geometry`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_TOP = 1000
"""The most cells one answer ranks: a unit's work for a week is tens of cells; a whole region
is the map page's business (it draws every cell, listing only the top ones)."""

Position = tuple[float, float]


class HotspotQuery(BaseModel):
    """Which unit, week and how many cells, for which purpose, in which format."""

    model_config = ConfigDict(extra="forbid")

    region: str = Field(min_length=1, max_length=64, description="one of your regions")
    purpose: str = Field(
        min_length=1, max_length=64, description="one of the configured purposes (logged)"
    )
    district: str | None = Field(
        default=None, min_length=1, max_length=64, description="keep one district of the region"
    )
    week: date | None = Field(
        default=None,
        description="week_start (a Monday) of a materialised week; default the first (horizon 1)",
    )
    top: int = Field(default=20, ge=1, le=MAX_TOP, description="how many cells, best first")
    format: Literal["json", "csv", "geojson"] = Field(default="json", description="answer format")


class HotspotReason(BaseModel):
    """One of the top reasons of a cell's forecast, with a sentence for patrol planners."""

    model_config = ConfigDict(frozen=True)

    feature: str
    description: str
    value: float | None = None
    contribution: float
    sentence: str = Field(description="the reason in plain language")


class Polygon(BaseModel):
    """A GeoJSON Polygon: one closed exterior ring of [lon, lat] positions."""

    type: Literal["Polygon"] = "Polygon"
    coordinates: list[list[Position]]


class HotspotCell(BaseModel):
    """One cell's forecast for the week."""

    rank: int = Field(ge=1)
    cell_id: str
    h3_resolution: int
    region: str
    district: str | None
    lat: float
    lon: float
    area_km2: float
    week_start: date
    horizon: int
    expected_count: float = Field(description="expected incidents registered in the week")
    lower_80: float = Field(description="80 % interval: lower end")
    upper_80: float = Field(description="80 % interval: upper end")
    reasons: list[HotspotReason]
    polygon: Polygon


class HotspotResponse(BaseModel):
    """The ranked cells of a unit for one week, and what the forecast is."""

    model_name: str
    model_version: str
    as_of: date = Field(description="the forecast uses only what was known by this date")
    materialized_at: datetime
    region: str
    district: str | None
    week: date
    horizon: int
    weeks: list[date] = Field(description="the materialised weeks (horizon 1 first)")
    purpose: str
    cells_in_unit: int = Field(description="cells of the unit forecast for the week")
    expected_in_unit: float = Field(description="their expected incidents, summed")
    top: int
    cells: list[HotspotCell]


class Feature(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: str
    geometry: Polygon
    properties: dict[str, Any]


class HotspotCollection(BaseModel):
    """The same answer as GeoJSON (a FeatureCollection; the answer's facts in ``metadata``)."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[Feature]
    metadata: dict[str, Any]
