"""Cell shapes: GeoJSON polygons from H3 boundaries, and the map page's SVG drawn from them.

Why here and not in the browser: the service must work without the internet (no map tiles,
no JavaScript libraries), and the pages run under a CSP without scripts. So the map is SVG
drawn on the server: each cell's H3 boundary projected to the SVG box with an equirectangular
projection scaled by cos(latitude) at the map's centre (over a city or a region, a few tens of
kilometres, its distortion is far below what the eye can see), coloured by expected count on a
sequential scale with a legend.

H3 gives boundaries as (lat, lng) pairs; GeoJSON wants [lon, lat] and a closed ring (the first
position repeated at the end), exterior rings counter-clockwise (RFC 7946, section 3.1.6).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import h3

PALETTE = ("#ffffcc", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#b10026")
"""ColorBrewer YlOrRd, 8 classes: a sequential scale (light = few, dark red = many) that stays
readable for the common colour-vision deficiencies and in greyscale print."""
DIGITS = 7  # ~1 cm at the equator: more would only lengthen the answers


def cell_ring(cell_id: str) -> list[list[float]]:
    """The cell's boundary as a closed GeoJSON ring of [lon, lat] positions, counter-clockwise
    (7 positions for a hexagon, 6 for one of H3's 12 pentagons)."""
    ring = [[round(lng, DIGITS), round(lat, DIGITS)] for lat, lng in h3.cell_to_boundary(cell_id)]
    if _signed_area(ring) < 0:
        ring.reverse()
    ring.append(list(ring[0]))
    return ring


def _signed_area(ring: Sequence[Sequence[float]]) -> float:
    """Twice the signed area of an open ring (shoelace; > 0 when counter-clockwise)."""
    return sum(
        x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, [*ring[1:], ring[0]], strict=True)
    )


def cell_polygon(cell_id: str) -> dict[str, object]:
    """The cell as a GeoJSON Polygon geometry."""
    return {"type": "Polygon", "coordinates": [cell_ring(cell_id)]}


# ---- the colour scale -----------------------------------------------------------------------
@dataclass(frozen=True)
class ColourClass:
    colour: str
    low: float
    high: float

    @property
    def label(self) -> str:
        return f"{self.low:.2f} to {self.high:.2f}"


def colour_classes(values: Sequence[float], classes: int = len(PALETTE)) -> list[ColourClass]:
    """Quantile classes of ``values`` (each colour covers about as many cells), merged where
    breaks repeat (many cells share a value); the last class ends at the maximum."""
    if not values:
        return []
    ordered = sorted(values)
    n = len(ordered)
    breaks = [ordered[min(n - 1, math.ceil(n * k / classes) - 1)] for k in range(1, classes + 1)]
    uppers: list[float] = []
    for b in breaks:
        if not uppers or b > uppers[-1]:
            uppers.append(b)
    colours = _spread(len(uppers))
    found: list[ColourClass] = []
    low = ordered[0]
    for colour, high in zip(colours, uppers, strict=True):
        found.append(ColourClass(colour, low, high))
        low = high
    return found


def _spread(k: int) -> list[str]:
    """``k`` colours of the palette, spread over its whole range (light to dark)."""
    if k >= len(PALETTE):
        return list(PALETTE)
    if k == 1:
        return [PALETTE[-1]]
    step = (len(PALETTE) - 1) / (k - 1)
    return [PALETTE[round(i * step)] for i in range(k)]


def colour_of(value: float, classes: Sequence[ColourClass]) -> str:
    for c in classes:
        if value <= c.high:
            return c.colour
    return classes[-1].colour if classes else PALETTE[0]


# ---- the SVG --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SvgCell:
    cell_id: str
    points: str  # "x,y x,y ..." for <polygon points>
    colour: str
    title: str
    rank: int
    label_x: float
    label_y: float


@dataclass(frozen=True)
class SvgMap:
    width: int
    height: int
    cells: list[SvgCell]
    legend: list[ColourClass]


def project(
    rings: Sequence[Sequence[Sequence[float]]], width: int, pad: float = 6.0
) -> tuple[list[list[tuple[float, float]]], int]:
    """The rings ([lon, lat] positions) in SVG pixels: x = lon·cos(φ0), y = −lat, with φ0 the
    latitude of the box's centre, scaled so that the box fills ``width`` (north up). Returns
    the projected rings and the height the box needs."""
    lons = [p[0] for r in rings for p in r]
    lats = [p[1] for r in rings for p in r]
    if not lons:
        return [], 0
    phi0 = math.radians((min(lats) + max(lats)) / 2)
    x0, y1 = min(lons) * math.cos(phi0), max(lats)
    span_x = (max(lons) - min(lons)) * math.cos(phi0)
    span_y = max(lats) - min(lats)
    scale = (width - 2 * pad) / max(span_x, span_y, 1e-9)
    projected = [
        [(pad + (p[0] * math.cos(phi0) - x0) * scale, pad + (y1 - p[1]) * scale) for p in r]
        for r in rings
    ]
    height = math.ceil(2 * pad + span_y * scale)
    return projected, height


def svg_map(
    cells: Sequence[tuple[str, float, str, int]], width: int = 760, labelled: int = 10
) -> SvgMap:
    """The map of ``cells`` (cell id, expected count, title, rank): hexagons coloured by
    expected count; the ``labelled`` highest-ranked carry their rank."""
    rings = [cell_ring(c[0]) for c in cells]
    projected, height = project(rings, width)
    legend = colour_classes([c[1] for c in cells])
    drawn = []
    for (cell_id, value, title, rank), ring in zip(cells, projected, strict=True):
        open_ring = ring[:-1]
        cx = sum(p[0] for p in open_ring) / len(open_ring)
        cy = sum(p[1] for p in open_ring) / len(open_ring)
        drawn.append(
            SvgCell(
                cell_id=cell_id,
                points=" ".join(f"{x:.1f},{y:.1f}" for x, y in open_ring),
                colour=colour_of(value, legend),
                title=title,
                rank=rank if rank <= labelled else 0,
                label_x=round(cx, 1),
                label_y=round(cy, 1),
            )
        )
    drawn.sort(key=lambda c: (c.rank > 0, -c.rank))  # labelled cells drawn last, on top
    return SvgMap(width=width, height=max(height, 1), cells=drawn, legend=legend)
