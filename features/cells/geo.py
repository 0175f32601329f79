"""Cell geometry: centroid, area and ring-1 neighbours of H3 cells, and points in kilometres.

Distances for the kernel density baseline are chord lengths on a sphere of the Earth's mean
radius: for the few kilometres a bandwidth spans they equal great-circle distances to well
under a metre, and they let a k-d tree do the neighbour search without a map projection (one
projection would distort a country that spans several degrees of latitude).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

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


def kernel_pairs(
    points: NDArray[np.float64],
    centroids: NDArray[np.float64],
    area_km2: NDArray[np.float64],
    bandwidth_km: float,
    *,
    cutoff: float = 4.0,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """``(point, cell, mass)``: the share of a Gaussian kernel of ``bandwidth_km`` around each
    point that falls on each cell within ``cutoff`` bandwidths (density at the centroid times
    the cell's area). Points and centroids are `xyz_km` rows.

    One sparse distance matrix between two k-d trees instead of a Python loop over points: a
    country's decade of incidents (millions of points) takes seconds, and the KDE baseline and
    the kernel features share this one definition of "near"."""
    from scipy.spatial import cKDTree

    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))
    if len(points) == 0 or len(centroids) == 0:
        return empty
    near = (
        cKDTree(points)
        .sparse_distance_matrix(cKDTree(centroids), cutoff * bandwidth_km, output_type="coo_matrix")
        .tocoo()
    )
    rows, cols = near.row.astype(np.int64), near.col.astype(np.int64)
    d2 = near.data**2  # the coo output keeps zero distances (a point on a centroid)
    norm = 1.0 / (2 * np.pi * bandwidth_km**2)
    mass = norm * np.exp(-d2 / (2 * bandwidth_km**2)) * area_km2[cols]
    return rows, cols, mass


def cell_centroids(cells: Sequence[str]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(xyz_km rows, area_km2)`` of the cells, in their order."""
    lat_lon = np.asarray([h3.cell_to_latlng(c) for c in cells], dtype=np.float64).reshape(-1, 2)
    area = np.asarray([h3.cell_area(c, "km^2") for c in cells], dtype=np.float64)
    return xyz_km(lat_lon[:, 0], lat_lon[:, 1]), area


def kernel_weekly(
    lat: NDArray[np.float64],
    lon: NDArray[np.float64],
    week: NDArray[np.int64],
    cells: Sequence[str],
    width: int,
    bandwidth_km: float,
    *,
    cutoff: float = 4.0,
    chunk: int = 250_000,
) -> NDArray[np.float64]:
    """Kernel mass per (cell, week column): each point spreads over the cells near it in the
    week it belongs to (``week`` in ``0..width-1``; others are ignored). Points go in chunks so
    memory stays bounded by the chunk, not by a decade of incidents."""
    centroids, area = cell_centroids(cells)
    out = np.zeros(len(cells) * width, dtype=np.float64)
    keep = (week >= 0) & (week < width)
    lat, lon, week = lat[keep], lon[keep], week[keep]
    for start in range(0, len(lat), chunk):
        part = slice(start, start + chunk)
        rows, cols, mass = kernel_pairs(
            xyz_km(lat[part], lon[part]), centroids, area, bandwidth_km, cutoff=cutoff
        )
        out += np.bincount(cols * width + week[part][rows], weights=mass, minlength=out.size)
    return out.reshape(len(cells), width)
