"""The true weekly intensity per map cell: what the best possible hotspot forecast would say.

For every H3 cell (resolutions 8 and 9) and calendar week W = [W0, W0 + 7 days) of the truth
window, ``expected_count`` is the expected number of incidents *registered* in W given
everything that happened before W0, integrated from the very intensity `places.py` drew the
incidents from:

    E[N(c, W) | history to W0] =   Σ_d  B_d(W) · S_d(c)            background + releases
                                 + Σ_e  H_e(W) · G_e(c)            emerging hotspots
                                 + Σ_i  K_i(W) · R_i(c)            near-repeat of events i < W0
                                 + #{i : occurred < W0, registered in W, in c}   (already known)

- B_d(W): district d's primary rate (latent level at w − lead, weekday, season, persistent split)
  plus the incidents still due after releases from custody before W0, summed over the days of
  W; S_d: the district's spatial mixture (persistent hotspots and the diffuse part).
- H_e(W): emerging hotspot e's rate (its amplitude that week); G_e: a ~300 m Gaussian.
- K_i(W): the expected children of a past event i in W, μ·(e^{-(W0−t_i)/τ} − e^{-(W1−t_i)/τ});
  R_i: the near-repeat kernel around i (σ = near_repeat_km).
- Every event expected inside W also brings its own descendants inside W (the Hawkes
  cascade, D(r) = μ/(1−μ)·(1 − e^{−r(1−μ)/τ}) within the r days left) and is registered before
  W ends with probability q(r) (the registration lag and hour of day, integrated once).

The spatial parts are integrated by Monte Carlo (seeded; points assigned to cells with
``h3.latlng_to_cell``). Not included: incidents after releases that happen inside W itself,
and records later dropped from the register (0.5 %). Only the densest cells holding
``truth_cell_mass`` of each resolution's expected incidents are written (the rest are empty
fields and rural outskirts with less than about one incident in decades).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import date
from typing import Any, TypeVar

import h3
import h3.api.basic_int as h3_int
import numpy as np
import polars as pl
from scipy import sparse

from features.contract.schema import CRIME_TYPE
from features.simulator.config import PlacesConfig
from features.simulator.places import (
    _CRIME_THEME,
    _DISTRICT_LAT,
    _DISTRICT_LON,
    _URBAN,
    Incidents,
    PlaceWorld,
    base_rates,
    thinning,
)
from features.simulator.places_hotspots import HOTSPOT_KM_SD, Releases
from features.simulator.timebase import DAY_US, day_of

RESOLUTIONS = (8, 9)
INTENSITY_SCHEMA = {
    "h3_resolution": pl.Int32,
    "cell_id": pl.String,
    "week_start": pl.Date,
    "expected_count": pl.Float64,
}
_NR_POINTS = 32  # Monte Carlo offsets per past event
_EPISODE_POINTS = 500
_NR_HORIZON_DAYS = 60  # a past event's children after this many days are negligible
BLOCK_EVENTS = 20_000  # past events per block of the near-repeat part (~0.2 GB a block)


def monday_on_or_before(day: IntOrArray) -> IntOrArray:
    return day - (day + 3) % 7  # 1970-01-01 was a Thursday


IntOrArray = TypeVar("IntOrArray", int, "np.ndarray[Any, np.dtype[np.int64]]")


@dataclass(frozen=True)
class TruthWindow:
    """Calendar weeks (Monday day numbers) the truth covers."""

    first_monday: int
    weeks: int

    @staticmethod
    def of(as_of: Sequence[date], extraction_day: int, years_before: int) -> TruthWindow:
        """From the Monday `years_before` years before the first as-of to the last week that
        has ended by the extraction day."""
        first = monday_on_or_before(day_of(min(as_of)) - round(365.25 * years_before))
        last = monday_on_or_before(extraction_day + 1) - 7  # ends by the extraction day
        return TruthWindow(first, max(0, (last - first) // 7 + 1))

    def clipped(self, first_day: int) -> TruthWindow:
        start = max(self.first_monday, monday_on_or_before(first_day) + 7)
        end = self.first_monday + 7 * self.weeks
        return TruthWindow(start, max(0, (end - start) // 7))

    @property
    def mondays(self) -> np.ndarray:
        return self.first_monday + 7 * np.arange(self.weeks)


def window_incidents(incidents: Incidents, window: TruthWindow, first_day: int) -> Incidents:
    """The incidents `intensity_frame` reads (in their order): those occurring from
    `_NR_HORIZON_DAYS` (and a day) before the window on, or registered from a day before it
    on. The run keeps only these, year by year, instead of every incident of the period."""
    first = window.clipped(first_day).first_monday
    keep = (incidents.occurred_us >= (first - _NR_HORIZON_DAYS - 1) * DAY_US) | (
        incidents.registered_us >= (first - 1) * DAY_US
    )
    return Incidents(*(getattr(incidents, f.name)[keep] for f in fields(incidents)))


def _registered_within(rng: np.random.Generator) -> np.ndarray:
    """q[k]: probability that an incident occurring on some day is registered by the end of
    the k-th following day (k = 0..6), from the simulator's hour-of-day and lag laws."""
    n = 200_000
    evening = rng.random(n) < 0.6
    hour = np.where(evening, (21 + 3 * rng.standard_normal(n)) % 24, 24 * rng.random(n))
    lag_s = 5400 * np.exp(1.2 * rng.standard_normal(n))
    lag_s = lag_s + (rng.random(n) < 0.05) * rng.exponential(3 * 86400, n)
    t = hour / 24 + lag_s / 86400
    return np.array([(t < k + 1).mean() for k in range(7)])


def _day_factor(cfg: PlacesConfig, q: np.ndarray) -> np.ndarray:
    """Per day j of a week: an event expected that day is registered within the week and brings
    its in-week descendants (registered-within probability times 1 + D(days left))."""
    mu, tau = cfg.near_repeat_mean, cfg.near_repeat_days
    left = 7 - np.arange(7) - 0.5
    descendants = mu / (1 - mu) * (1 - np.exp(-left * (1 - mu) / tau))
    return np.asarray(q[6 - np.arange(7)] * (1 + descendants))


def _cells(lat: np.ndarray, lon: np.ndarray, res: int) -> np.ndarray:
    """H3 cells as integers (cheap to sort and count); hex strings only for kept cells."""
    to_cell = h3_int.latlng_to_cell
    return np.fromiter(
        (to_cell(a, o, res) for a, o in zip(lat.tolist(), lon.tolist(), strict=True)),
        dtype=np.uint64,
        count=len(lat),
    )


def _quantised(x: np.ndarray) -> np.ndarray:
    """Round to 12 significant bits (relative error < 1.3e-4): the low mantissa bytes become
    zeros and the file a third of its size; no ranking or sum is moved by that."""
    bits = np.ascontiguousarray(x, dtype=np.float64).view(np.uint64)
    half, low = np.uint64(1 << 39), np.uint64((1 << 40) - 1)
    return ((bits + half) & ~low).view(np.float64)


@dataclass
class _Points:
    """Monte Carlo points: the component each belongs to, its weight, its position."""

    comp: list[np.ndarray]
    weight: list[np.ndarray]
    lat: list[np.ndarray]
    lon: list[np.ndarray]

    def add(self, comp: np.ndarray, weight: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> None:
        self.comp.append(comp)
        self.weight.append(weight)
        self.lat.append(lat)
        self.lon.append(lon)


def _district_points(
    rng: np.random.Generator, world: PlaceWorld, cfg: PlacesConfig, pts: _Points
) -> None:
    """S_d: half the points on the persistent hotspots, half diffuse, weighted to the mixture."""
    n = cfg.truth_samples
    k = world.hot_lat.shape[1]
    hot_w = np.diff(world.hot_cdf, axis=1, prepend=0.0)
    per_hot = max(1, n // (2 * k))
    for d in range(len(_DISTRICT_LAT)):
        spread = 0.02 if _URBAN[d] else 0.05
        lat = [_DISTRICT_LAT[d] + spread * rng.standard_normal(n // 2)]
        lon = [_DISTRICT_LON[d] + 1.4 * spread * rng.standard_normal(n // 2)]
        weight = [np.full(n // 2, (1 - cfg.hotspot_share) / (n // 2))]
        for h in range(k):
            lat.append(world.hot_lat[d, h] + HOTSPOT_KM_SD * rng.standard_normal(per_hot))
            lon.append(world.hot_lon[d, h] + 1.4 * HOTSPOT_KM_SD * rng.standard_normal(per_hot))
            weight.append(np.full(per_hot, cfg.hotspot_share * hot_w[d, h] / per_hot))
        w = np.concatenate(weight)
        pts.add(np.full(len(w), d), w, np.concatenate(lat), np.concatenate(lon))


def _weekly(per_day: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """(rows, 7·weeks) daily expectations -> (rows, weeks), each day times its factor."""
    rows, days = per_day.shape
    return np.asarray((per_day.reshape(rows, days // 7, 7) * factor).sum(axis=2))


def _release_daily(
    releases: Releases, cfg: PlacesConfig, days: np.ndarray, mondays: np.ndarray, n_d: int
) -> np.ndarray:
    """(districts, days): incidents still due from releases before each day's week start."""
    out = np.zeros((n_d, len(days)))
    if len(releases.day) == 0 or cfg.release_incidents == 0:
        return out
    tau = cfg.release_days
    for wi, w0 in enumerate(mondays):
        sel = (releases.day < w0) & (releases.day > w0 - 20 * tau)
        for j in range(7):
            k = (w0 + j - releases.day[sel]).astype(np.float64)
            p = cfg.release_incidents * (np.exp(-k / tau) - np.exp(-(k + 1) / tau))
            out[:, 7 * wi + j] = np.bincount(releases.district[sel], p, minlength=n_d)
    return out


def intensity_frame(
    world: PlaceWorld,
    cfg: PlacesConfig,
    persons: int,
    releases: Releases,
    realised: Sequence[Incidents],
    window: TruthWindow,
    rng: np.random.Generator | None = None,
    block_events: int = BLOCK_EVENTS,
) -> pl.DataFrame:
    """The truth table ``places_intensity`` (schema `INTENSITY_SCHEMA`), sorted.

    `realised` may be only the incidents `window_incidents` keeps. Memory is bounded by
    `block_events` (the near-repeat part, `_event_blocks`) and the cells touched, not by the
    number of incidents; a run whose window holds at most `block_events` past events is the
    single-block computation."""
    if block_events < 1:
        raise ValueError(f"block_events must be at least 1, got {block_events}")
    rng = rng or np.random.default_rng(0)
    win = window.clipped(world.first_day)
    if win.weeks == 0:
        return pl.DataFrame(schema=INTENSITY_SCHEMA)
    mondays = win.mondays
    days = win.first_monday + np.arange(7 * win.weeks)
    factor = _day_factor(cfg, _registered_within(rng))
    thin = thinning(days, world.first_day, cfg)
    rate0 = base_rates(world, cfg, persons)
    n_d = rate0.shape[0]

    # B_d: background per district and day (the same level as places._daily_counts), releases
    themes = np.array([_CRIME_THEME.get(c, -1) for c in CRIME_TYPE])
    bg = np.zeros((n_d, len(days)))
    for k, theme in enumerate(themes):
        level = np.zeros((n_d, len(days)))
        if theme >= 0:
            for d in range(n_d):
                dd = np.full(len(days), d)
                level[d] = world.level(np.full(len(days), theme), dd, days, -cfg.lead_weeks)
        bg += rate0[:, k : k + 1] * np.exp(level)
    bg *= (1 - cfg.emerging_share) * thin[None, :]
    bg += _release_daily(releases, cfg, days, mondays, n_d)
    district_w = _weekly(bg, factor)

    # H_e: emerging hotspots alive in the window
    eps = world.episodes
    wk = (days - world.first_day) // 7
    amp = eps.amplitude(np.arange(wk[0], wk[-1] + 1))[:, wk - wk[0]]
    alive = np.flatnonzero(amp.sum(axis=1) > 0)
    rate_tot = rate0.sum(axis=1) * cfg.emerging_share
    ep_daily = rate_tot[eps.district[alive]][:, None] * amp[alive] * thin[None, :]
    episode_w = _weekly(ep_daily, factor)

    # K_i: children of past events (occurred before the week's start), and the known late
    # registrations; both are taken a block of events at a time (`_event_blocks`)
    occ = np.concatenate([r.occurred_us for r in realised]) / DAY_US
    reg = np.concatenate([r.registered_us for r in realised])
    ev_lat = np.concatenate([r.lat for r in realised])
    ev_lon = np.concatenate([r.lon for r in realised])
    past = np.flatnonzero(
        (occ >= win.first_monday - _NR_HORIZON_DAYS) & (occ < win.first_monday + 7 * win.weeks)
    )
    reg_day = reg // DAY_US
    occ_day = np.floor(occ).astype(np.int64)
    late = np.flatnonzero(
        (reg_day >= win.first_monday)
        & (reg_day < win.first_monday + 7 * win.weeks)
        & (monday_on_or_before(occ_day) < monday_on_or_before(reg_day))
    )
    late_week = (monday_on_or_before(reg_day[late]) - win.first_monday) // 7

    head = _Points([], [], [], [])
    _district_points(rng, world, cfg, head)
    for i, e in enumerate(alive):
        m = _EPISODE_POINTS
        head.add(
            np.full(m, n_d + i),
            np.full(m, 1.0 / m),
            eps.lat[e] + HOTSPOT_KM_SD * rng.standard_normal(m),
            eps.lon[e] + 1.4 * HOTSPOT_KM_SD * rng.standard_normal(m),
        )
    events = _Events(occ[past], ev_lat[past], ev_lon[past], ev_lat[late], ev_lon[late], late_week)
    sums: dict[int, _CellSums] = {res: _CellSums() for res in RESOLUTIONS}
    for block, weekly in _event_blocks(
        rng, cfg, events, head, np.vstack([district_w, episode_w]), mondays, factor, block_events
    ):
        comp = np.concatenate(block.comp)
        weight = np.concatenate(block.weight)
        lat, lon = np.concatenate(block.lat), np.concatenate(block.lon)
        for res in RESOLUTIONS:
            sums[res].add(*_cell_sums(_cells(lat, lon, res), comp, weight, weekly))
    frames = [_resolution_frame(res, *sums[res].result(), mondays, cfg) for res in RESOLUTIONS]
    return pl.concat(frames).sort("h3_resolution", "cell_id", "week_start")


@dataclass(frozen=True)
class _Events:
    """The incidents the near-repeat and known parts need: past events (occurred before the
    window's end) and late registrations (one component each, at its registration week)."""

    t: np.ndarray  # occurrence, fractional day number
    lat: np.ndarray
    lon: np.ndarray
    late_lat: np.ndarray
    late_lon: np.ndarray
    late_week: np.ndarray


def _event_blocks(
    rng: np.random.Generator,
    cfg: PlacesConfig,
    ev: _Events,
    head: _Points,
    head_weekly: np.ndarray,
    mondays: np.ndarray,
    factor: np.ndarray,
    block_events: int,
) -> Iterator[tuple[_Points, np.ndarray]]:
    """Monte Carlo points and (components x weeks) expectations, `block_events` past events
    (and as many late registrations) at a time, so that memory is bounded by the block and
    not by the incidents of the whole window. Why blocks give the same numbers: every row of
    the near-repeat and known parts depends on its own event only, the point offsets are the
    very normals one draw of all of them gives (lat from a copy of the generator, lon from the
    generator advanced past every lat), and the products are summed per cell (`_CellSums`).
    The first block carries the district and episode components (`head`): a run of one block
    is the unblocked computation, operation for operation."""
    km = cfg.near_repeat_km / 111.0
    m = _NR_POINTS
    n_past, n_late = len(ev.t), len(ev.late_week)
    lat_rng = copy.deepcopy(rng)
    for lo in range(0, n_past * m, block_events * m):  # skip the lat normals: lon follows them
        rng.standard_normal(min(block_events * m, n_past * m - lo))
    lon_rng = rng
    mu, tau = cfg.near_repeat_mean, cfg.near_repeat_days
    weeks = len(mondays)
    blocks = max(1, -(-n_past // block_events), -(-n_late // block_events))
    for b in range(blocks):
        pts = head if b == 0 else _Points([], [], [], [])
        rows = [head_weekly] if b == 0 else []
        base = head_weekly.shape[0] if b == 0 else 0
        sel = slice(b * block_events, (b + 1) * block_events)
        t_i = ev.t[sel]
        k = len(t_i)
        nr_w = np.zeros((k, weeks))
        before = mondays[None, :] - t_i[:, None]  # days from the event to the week's start
        ok = (before > 0) & (before < _NR_HORIZON_DAYS)
        for j in range(7):
            start = np.where(ok, before + j, 0.0)
            mass = mu * (np.exp(-start / tau) - np.exp(-(start + 1) / tau))
            nr_w += np.where(ok, mass, 0.0) * factor[j]
        pts.add(
            np.repeat(base + np.arange(k), m),
            np.full(k * m, 1.0 / m),
            np.repeat(ev.lat[sel], m) + km * lat_rng.standard_normal(k * m),
            np.repeat(ev.lon[sel], m) + 1.4 * km * lon_rng.standard_normal(k * m),
        )
        base += k
        late_week = ev.late_week[sel]
        n = len(late_week)
        # each known late registration is its own component, one point, weight 1
        pts.add(base + np.arange(n), np.ones(n), ev.late_lat[sel], ev.late_lon[sel])
        known_w = np.zeros((n, weeks))
        known_w[np.arange(n), late_week] = 1.0
        yield pts, np.vstack([*rows, nr_w, known_w])


class _CellSums:
    """Expected counts per (cell, week) summed over blocks: cells sorted, rows aligned. Its
    size is the cells touched (geography), not the incidents."""

    def __init__(self) -> None:
        self.ids: np.ndarray | None = None
        self.expected = np.zeros((0, 0))

    def add(self, ids: np.ndarray, expected: np.ndarray) -> None:
        if self.ids is None:
            self.ids, self.expected = ids, expected
            return
        pos = np.searchsorted(self.ids, ids)
        known = pos < len(self.ids)
        known[known] = self.ids[pos[known]] == ids[known]
        if not known.all():
            merged = np.union1d(self.ids, ids)
            grown = np.zeros((len(merged), self.expected.shape[1]))
            grown[np.searchsorted(merged, self.ids)] = self.expected
            self.ids, self.expected = merged, grown
            pos = np.searchsorted(merged, ids)
        self.expected[pos] += expected

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        assert self.ids is not None, "no block added"
        return self.ids, self.expected


def _cell_sums(
    cells: np.ndarray, comp: np.ndarray, weight: np.ndarray, weekly: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cells x weeks = (cells x components) @ (components x weeks) for the cells touched."""
    ids, cell_idx = np.unique(cells, return_inverse=True)
    spatial = sparse.csr_matrix(
        (weight, (cell_idx, comp)), shape=(len(ids), weekly.shape[0])
    )  # duplicates are summed
    return ids, np.asarray(spatial @ weekly)


def _resolution_frame(
    res: int,
    ids: np.ndarray,
    expected: np.ndarray,
    mondays: np.ndarray,
    cfg: PlacesConfig,
) -> pl.DataFrame:
    """The densest cells (holding `truth_cell_mass` of the expected count), one row a week."""
    total = expected.sum(axis=1)
    order = np.argsort(-total, kind="stable")
    cum = np.cumsum(total[order])
    keep = order[: int(np.searchsorted(cum, cfg.truth_cell_mass * cum[-1])) + 1]
    keep = np.sort(keep)
    n_w = len(mondays)
    names = pl.Series("cell_id", [h3.int_to_str(int(c)) for c in ids[keep]], pl.String)
    return pl.DataFrame(
        {
            "h3_resolution": np.full(len(keep) * n_w, res, dtype=np.int32),
            "cell_id": names.gather(np.repeat(np.arange(len(keep)), n_w)),
            "week_start": np.tile(mondays, len(keep)).astype(np.int32),
            "expected_count": _quantised(expected[keep].ravel()),
        }
    ).with_columns(pl.col("week_start").cast(pl.Date))
