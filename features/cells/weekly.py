"""Incident arrays of the cell frame: counts (and kernel mass) per (cell, registration week) in a
dense cells x weeks array, and every incident feature of an anchor week as a slice or a
difference of cumulative sums of it (see `features.cells.build` for why this is point-in-time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import h3
import numpy as np
import polars as pl

from features.cells.geo import kernel_weekly
from features.cells.spec import CellSpec, half_life_label, kernel_name


@dataclass(frozen=True)
class Grid:
    """The cells (incident cells and their universe neighbours) and the weeks of the arrays."""

    cells: list[str]
    index: dict[str, int]
    base: date  # Monday of column 0
    width: int
    pairs: dict[int, tuple[np.ndarray, np.ndarray]]  # ring distance -> (source idx, neighbour idx)

    def col(self, week: date) -> int:
        return (week - self.base).days // 7


def make_grid(
    cell_ids: list[str], k_ring: int, distances: list[int], base: date, last: date
) -> Grid:
    observed = sorted(set(cell_ids))
    seen = set(observed)
    cells = list(observed)
    for c in observed:
        for n in h3.grid_disk(c, k_ring):
            if n not in seen:
                seen.add(n)
                cells.append(n)
    index = {c: i for i, c in enumerate(cells)}
    observed_set = set(observed)
    pairs: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for d in distances:
        src: list[int] = []
        nb: list[int] = []
        for c, i in index.items():
            for n in h3.grid_ring(c, d):
                if n in observed_set:
                    src.append(i)
                    nb.append(index[n])
        pairs[d] = (np.asarray(src, dtype=np.int64), np.asarray(nb, dtype=np.int64))
    width = (last - base).days // 7 + 1
    return Grid(cells, index, base, width, pairs)


def weekly_arrays(
    incidents: pl.DataFrame, grid: Grid, crime_types: Sequence[str]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Incidents per (cell, registration week) inside the grid's weeks: all types, and per type.

    The cell and week of each incident are looked up once; each type is a mask over them."""
    shape = (len(grid.cells), grid.width)
    if incidents.is_empty():
        return np.zeros(shape), {t: np.zeros(shape, dtype=np.int32) for t in crime_types}
    week = pl.col("registered_at").dt.date().dt.truncate("1w")
    offset = (week - pl.lit(grid.base)).dt.total_days() // 7
    cols = incidents.select(offset).to_series().to_numpy().astype(np.int64)
    cells = incidents.select(pl.col("cell_id").replace_strict(grid.index, return_dtype=pl.Int64))
    rows = cells.to_series().to_numpy()
    types = incidents["crime_type"].to_numpy()
    keep = (cols >= 0) & (cols < grid.width)
    rows, cols, types = rows[keep], cols[keep], types[keep]
    total = np.zeros(shape, dtype=np.float64)
    np.add.at(total, (rows, cols), 1.0)
    per_type: dict[str, np.ndarray] = {}
    for t in crime_types:
        mine = types == t
        array = np.zeros(shape, dtype=np.int32)
        np.add.at(array, (rows[mine], cols[mine]), 1)
        per_type[t] = array
    return total, per_type


def _kernel_array(
    incidents: pl.DataFrame, grid: Grid, spec: CellSpec, bandwidth: float
) -> np.ndarray:
    """Kernel mass per (cell, registration week) at ``bandwidth`` km (see `Kernel`)."""
    if incidents.is_empty():
        return np.zeros((len(grid.cells), grid.width))
    week = pl.col("registered_at").dt.date().dt.truncate("1w")
    offset = ((week - pl.lit(grid.base)).dt.total_days() // 7).alias("_w")
    pts = incidents.select("lat", "lon", offset)
    return kernel_weekly(
        pts["lat"].cast(pl.Float64).to_numpy(),
        pts["lon"].cast(pl.Float64).to_numpy(),
        pts["_w"].cast(pl.Int64).to_numpy(),
        grid.cells,
        grid.width,
        bandwidth,
        cutoff=spec.kernel.cutoff_bandwidths,
    )


def _cumsum(array: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """Cumulative counts with a leading 0 column: window (a-w, a] = cs[a+1] - cs[a+1-w]."""
    out = np.zeros((array.shape[0], array.shape[1] + 1), dtype=dtype)
    np.cumsum(array, axis=1, out=out[:, 1:], dtype=dtype)
    return out


def _intensities(total: np.ndarray, half_life: float, lookback: int) -> np.ndarray:
    """At every week a: sum over j = 1..lookback of N[a-j+1] * 0.5^((j-1)/h), by the recursion
    E[a] = d E[a-1] + N[a] (d = 0.5^(1/h)) and E[a] - d^L E[a-L] for the window of L weeks."""
    d = 0.5 ** (1.0 / half_life)
    running = np.empty_like(total)
    acc = np.zeros(total.shape[0])
    for w in range(total.shape[1]):
        acc = acc * d + total[:, w]
        running[:, w] = acc
    out = running.copy()
    out[:, lookback:] -= (d**lookback) * running[:, :-lookback]
    return out


def _ring_sum(values: np.ndarray, grid: Grid, distance: int) -> np.ndarray:
    src, nb = grid.pairs[distance]
    return np.bincount(src, weights=values[nb], minlength=len(grid.cells))


def incident_features(
    incidents: pl.DataFrame, grid: Grid, spec: CellSpec, anchors: list[date]
) -> dict[date, dict[str, np.ndarray]]:
    """Per anchor week, every incident feature as a vector over the grid's cells."""
    total, per_type = weekly_arrays(incidents, grid, spec.crime_types())
    cs = _cumsum(total)
    smoothed = {
        b: _cumsum(_kernel_array(incidents, grid, spec, b)) for b in spec.kernel.bandwidths_km
    }
    # integer counts: exact in int32, a quarter of the memory at resolution 9
    by_type = {t: _cumsum(array, np.int32) for t, array in per_type.items()}
    del per_type
    c, nr = spec.counts, spec.near_repeat
    lives = {*nr.half_lives_weeks, *(h for r in spec.rings for h in r.half_lives_weeks)}
    ew = {h: _intensities(total, h, nr.lookback_weeks) for h in lives}
    out: dict[date, dict[str, np.ndarray]] = {}
    for anchor in anchors:
        a = grid.col(anchor)
        f: dict[str, np.ndarray] = {}

        def window(sums: np.ndarray, w: int, a: int = a) -> np.ndarray:
            diff: np.ndarray = sums[:, a + 1] - sums[:, a + 1 - w]
            return diff

        def intensity(h: float, a: int = a) -> np.ndarray:
            return ew[h][:, a]

        for k in c.lags_weeks:
            f[f"count_all_lag{k}"] = total[:, a - k + 1]
        for w in c.windows_weeks:
            f[f"count_all_{w}w"] = window(cs, w)
        for t, sums in by_type.items():
            for w in c.by_crime_type_windows_weeks:
                f[f"count_{t}_{w}w"] = window(sums, w)
        for h in nr.half_lives_weeks:
            f[f"intensity_hl{half_life_label(h)}w"] = intensity(h)
        for r in spec.rings:
            for k in r.lags_weeks:
                f[f"ring{r.distance}_count_lag{k}"] = _ring_sum(
                    total[:, a - k + 1], grid, r.distance
                )
            for w in r.windows_weeks:
                f[f"ring{r.distance}_count_{w}w"] = _ring_sum(window(cs, w), grid, r.distance)
            for h in r.half_lives_weeks:
                name = f"ring{r.distance}_intensity_hl{half_life_label(h)}w"
                f[name] = _ring_sum(intensity(h), grid, r.distance)
        for b, sums in smoothed.items():
            for w in spec.kernel.windows_weeks:
                f[kernel_name(b, w)] = window(sums, w)
        for w in spec.district.incident_windows_weeks:
            f[f"_cell_{w}w"] = window(cs, w)
        out[anchor] = f
    return out
