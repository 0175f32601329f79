"""``configs/places.yaml``: the cell grid, the universe rule and the regions' bounding boxes,
typed so a typo is refused.

``region_bounds`` feeds the contract's control ``incidents.outside_region_bbox``
(`features.contract.controls`): an incident whose coordinates lie on the globe but outside its
region's box is quarantined at ingest. A region without a box is not checked; a file without
``region_bounds`` gets the demo country's four boxes, ``region_bounds: {}`` checks no region.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from riskcast.configio import find_config, load_yaml_model

PLACES_CONFIG = "places.yaml"


class RegionBox(BaseModel):
    """A latitude/longitude box (degrees, edges included) that every incident of a region must
    lie in. Boxes are deliberately generous (the whole administrative region with a margin): they
    catch swapped or mistyped coordinates, not incidents a few streets beyond a district line."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_lat: float = Field(ge=-90, le=90)
    max_lat: float = Field(ge=-90, le=90)
    min_lon: float = Field(ge=-180, le=180)
    max_lon: float = Field(ge=-180, le=180)

    @model_validator(mode="after")
    def _ordered(self) -> RegionBox:
        if self.min_lat >= self.max_lat:
            raise ValueError(f"min_lat {self.min_lat} must be below max_lat {self.max_lat}")
        if self.min_lon >= self.max_lon:
            raise ValueError(f"min_lon {self.min_lon} must be below max_lon {self.max_lon}")
        return self


def _default_region_bounds() -> dict[str, RegionBox]:
    """The four regions of the demo country (as ``configs/places.yaml`` spells them): each main
    city with over a degree of margin, which holds the rural districts 25-60 km out."""
    boxes = {
        "AST": (49.9, 52.4, 69.8, 73.1),  # Astana
        "ALA": (42.0, 44.5, 75.2, 78.6),  # Almaty
        "SHY": (41.1, 43.6, 67.9, 71.3),  # Shymkent
        "KAR": (48.6, 51.0, 71.4, 74.8),  # Karaganda
    }
    return {
        code: RegionBox(min_lat=a, max_lat=b, min_lon=c, max_lon=d)
        for code, (a, b, c, d) in boxes.items()
    }


class PlacesConfig(BaseModel):
    """How incidents become cells. Resolution 8 is the default planning unit (about 0.74 km²);
    9 (about 0.11 km²) must also work, coarser or finer grids are refused because neither the
    counts nor the map page are meant for them."""

    model_config = ConfigDict(extra="forbid")

    h3_resolution: Literal[8, 9] = 8
    universe_lookback_years: int = Field(default=3, gt=0, le=20)
    k_ring: int = Field(default=1, ge=0, le=3)
    week_start: Literal["monday"] = "monday"
    region_bounds: dict[str, RegionBox] = Field(
        default_factory=_default_region_bounds,
        description="per region code, the box its incidents must lie in (unboxed: not checked)",
    )


def load_places_config(path: Path | None = None) -> PlacesConfig:
    """The places configuration at ``path``, or ``places.yaml`` found the usual way."""
    return load_yaml_model(PlacesConfig, path or find_config(PLACES_CONFIG), "places configuration")
