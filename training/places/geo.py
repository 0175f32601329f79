"""Cell geometry: centroid, area and ring-1 neighbours of H3 cells, and points in kilometres.

Distances for the kernel density baseline are chord lengths on a sphere of the Earth's mean
radius: for the few kilometres a bandwidth spans they equal great-circle distances to well
under a metre, and they let a k-d tree do the neighbour search without a map projection (one
projection would distort a country that spans several degrees of latitude).
"""

from __future__ import annotations

from collections.abc import Iterable

import h3
import numpy as np
import polars as pl
from numpy.typing import NDArray

EARTH_RADIUS_KM = 6371.0088


def cell_geometry(cells: Iterable[str]) -> pl.DataFrame:
    """``cell_id, lat, lon, area_km2`` for each distinct cell (centroid and exact H3 area)."""
    ids = sorted(set(cells))
    lat: list[float] = []
    lon: list[float] = []
    area: list[float] = []
    for cell in ids:
        a, o = h3.cell_to_latlng(cell)
        lat.append(a)
        lon.append(o)
        area.append(h3.cell_area(cell, "km^2"))
    return pl.DataFrame(
        {"cell_id": ids, "lat": lat, "lon": lon, "area_km2": area},
        schema={"cell_id": pl.Utf8, "lat": pl.Float64, "lon": pl.Float64, "area_km2": pl.Float64},
    )


def ring1_pairs(cells: Iterable[str]) -> pl.DataFrame:
    """``cell_id, neighbour`` for every cell and each of its (up to 6) ring-1 neighbours."""
    src: list[str] = []
    dst: list[str] = []
    for cell in sorted(set(cells)):
        for n in h3.grid_ring(cell, 1):
            src.append(cell)
            dst.append(n)
    return pl.DataFrame(
        {"cell_id": src, "neighbour": dst}, schema={"cell_id": pl.Utf8, "neighbour": pl.Utf8}
    )


def xyz_km(lat: NDArray[np.float64], lon: NDArray[np.float64]) -> NDArray[np.float64]:
    """Points on the sphere (km), one row per point, for chord distances."""
    la, lo = np.radians(lat), np.radians(lon)
    return EARTH_RADIUS_KM * np.column_stack(
        (np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la))
    )
