"""Street incidents and citizens' appeals per district: what place-based forecasting learns.

Per district d and theme g (violence, drugs, disorder) a weekly latent level x[g, d, w]
follows an AR(1). Appeals of a theme arrive at rate ~ exp(x[g, d, w]); incidents of the
matching crime types at rate ~ exp(x[g, d, w - lead]): appeals lead incidents by `lead`
weeks. Incidents also have persistent hotspots, hotspots that emerge and fade over months
(`places_hotspots.py`), extra incidents after releases from custody into the district,
weekly and seasonal cycles and near-repeat offspring (a Hawkes cascade with branching ratio
`near_repeat_mean`). `places_truth.py` integrates the same intensity into the true weekly
expected count per map cell.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl

from features.contract.schema import APPEAL_CATEGORY, CRIME_TYPE, TABLES
from features.simulator.cases import null_where
from features.simulator.codes import APPEAL_TEXTS, DISTRICT_CODES, DISTRICTS, REGION_CODES
from features.simulator.config import PlacesConfig
from features.simulator.ids import make_ids
from features.simulator.places_hotspots import (
    HOTSPOT_KM_SD,
    Episodes,
    Releases,
    build_episodes,
    release_incidents,
)
from features.simulator.timebase import DAY_US, NEVER, SECOND_US, ts_series

THEMES = ("violence", "drugs", "disorder")
_CRIME_THEME = {"street_robbery": 0, "assault": 0, "drugs": 1, "hooliganism": 2}
_APPEAL_THEME = {"violence": 0, "bullying": 0, "drugs": 1, "alcohol": 2, "noise": 2}
_DISTRICT_LAT = np.array([d.lat for d in DISTRICTS])
_DISTRICT_LON = np.array([d.lon for d in DISTRICTS])
_DISTRICT_REGION = np.array([d.region for d in DISTRICTS])
_URBAN = np.array([d.urban for d in DISTRICTS])


@dataclass
class PlaceWorld:
    """What persists over the whole period: latent levels, hotspots, district weights."""

    first_day: int
    latent: np.ndarray  # (themes, districts, weeks)
    hot_lat: np.ndarray  # (districts, hotspots)
    hot_lon: np.ndarray
    hot_cdf: np.ndarray  # (districts, hotspots)
    weight: np.ndarray  # share of incidents per district
    episodes: Episodes  # emerging and fading hotspots

    def level(
        self, theme: np.ndarray, district: np.ndarray, days: np.ndarray, lead: int
    ) -> np.ndarray:
        week = np.clip((days - self.first_day) // 7 + lead, 0, self.latent.shape[2] - 1)
        out = np.zeros(len(days))
        themed = theme >= 0
        out[themed] = self.latent[theme[themed], district[themed], week[themed]]
        return out


BLOCK_DAYS = 365  # incidents and appeals are generated in fixed blocks from the start day


def build_world(
    rng: np.random.Generator,
    cfg: PlacesConfig,
    region_shares: dict[str, float],
    first_day: int,
    last_day: int,
    episode_seed: np.random.SeedSequence | None = None,
) -> PlaceWorld:
    """Hotspots, then the latent levels week by week (so a longer run only adds weeks), and
    the emerging hotspots from their own seed streams."""
    nd = len(DISTRICTS)
    k = cfg.hotspots_per_district
    spread = np.where(_URBAN, 0.012, 0.03)[:, None]
    hot_lat = _DISTRICT_LAT[:, None] + spread * rng.standard_normal((nd, k))
    hot_lon = _DISTRICT_LON[:, None] + 1.4 * spread * rng.standard_normal((nd, k))
    hot_w = rng.dirichlet(np.ones(k), nd)
    blocks = (last_day - first_day) // BLOCK_DAYS + 1
    weeks = (blocks * BLOCK_DAYS) // 7 + cfg.lead_weeks + 2
    x = np.zeros((len(THEMES), nd, weeks))
    sd0 = cfg.latent_sigma / np.sqrt(1 - cfg.latent_phi**2)
    x[:, :, 0] = sd0 * rng.standard_normal((len(THEMES), nd))
    for w in range(1, weeks):
        eps = rng.standard_normal((len(THEMES), nd))
        x[:, :, w] = cfg.latent_phi * x[:, :, w - 1] + cfg.latent_sigma * eps
    x = x - sd0**2 / 2  # E[exp(x)] = 1: the latent level redistributes, not inflates
    share = np.array([d.share * region_shares.get(REGION_CODES[d.region], 0.0) for d in DISTRICTS])
    weight = share * np.where(_URBAN, 1.6, 0.4)
    seed = episode_seed or np.random.SeedSequence(0)
    episodes = build_episodes(seed, cfg, _DISTRICT_LAT, _DISTRICT_LON, _URBAN, weeks)
    return PlaceWorld(
        first_day, x, hot_lat, hot_lon, np.cumsum(hot_w, axis=1), weight / weight.sum(), episodes
    )


def _season(days: np.ndarray, amplitude: float) -> np.ndarray:
    doy = (
        days.astype("datetime64[D]") - days.astype("datetime64[D]").astype("datetime64[Y]")
    ).astype(np.int64)
    return np.asarray(1.0 + amplitude * np.sin(2 * np.pi * (doy - 100) / 365.25))


def _weekday(days: np.ndarray, weekend: float) -> np.ndarray:
    dow = (days + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    return np.where(dow >= 4, weekend, 1.0)  # Friday to Sunday


def thinning(days: np.ndarray, first_day: int, cfg: PlacesConfig) -> np.ndarray:
    """Season x weekday over its maximum within the day's block: the share of the candidate
    events kept on that day (incidents are drawn at the peak rate, then thinned)."""
    start = first_day + (days - first_day) // BLOCK_DAYS * BLOCK_DAYS
    out = np.empty(len(days))
    for b in np.unique(start):
        block = np.arange(b, b + BLOCK_DAYS)
        peak = (_season(block, cfg.seasonal_amplitude) * _weekday(block, cfg.weekend_factor)).max()
        sel = start == b
        out[sel] = (
            _season(days[sel], cfg.seasonal_amplitude) * _weekday(days[sel], cfg.weekend_factor)
        ) / peak
    return out


def base_rates(world: PlaceWorld, cfg: PlacesConfig, persons: int) -> np.ndarray:
    """Peak daily rate of primary incidents per (district, crime type), before the latent
    level, the emerging/persistent split and thinning; (1 - near_repeat_mean) leaves room for
    the offspring so that all incidents together match incidents_per_1k_year."""
    tw = np.array([cfg.crime_type_weights.get(c, 0.0) for c in CRIME_TYPE])
    per_day = cfg.incidents_per_1k_year * persons / 1000 / 365.25 * (1 - cfg.near_repeat_mean)
    return np.asarray(per_day * world.weight[:, None] * (tw / tw.sum())[None, :])


@dataclass
class Incidents:
    counter: np.ndarray
    occurred_us: np.ndarray
    registered_us: np.ndarray
    district: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    crime_type: np.ndarray
    shown_type: np.ndarray  # crime type shown until fix_day
    fix_day: np.ndarray
    drop_day: np.ndarray

    def frame(self, extracted_us: int, extraction_day: int) -> pl.DataFrame:
        idx = np.flatnonzero(
            (self.registered_us <= extracted_us) & (self.drop_day > extraction_day)
        )
        ctype = np.where(
            self.fix_day[idx] > extraction_day, self.shown_type[idx], self.crime_type[idx]
        )
        d = self.district[idx]
        frame = pl.DataFrame(
            [
                make_ids("IN", self.counter[idx]).alias("incident_id"),
                ts_series("occurred_at", self.occurred_us[idx]),
                ts_series("registered_at", self.registered_us[idx]),
                pl.Series(
                    "region", np.asarray(REGION_CODES, dtype=object)[_DISTRICT_REGION[d]], pl.String
                ),
                pl.Series("district", np.asarray(DISTRICT_CODES, dtype=object)[d], pl.String),
                pl.Series("lat", np.round(self.lat[idx], 6), dtype=pl.Float64),
                pl.Series("lon", np.round(self.lon[idx], 6), dtype=pl.Float64),
                pl.Series("crime_type", np.asarray(CRIME_TYPE, dtype=object)[ctype], pl.String),
            ]
        )
        return frame.select(TABLES["incidents"].column_names)


def _daily_counts(
    rng: np.random.Generator,
    world: PlaceWorld,
    days: np.ndarray,
    rate: np.ndarray,
    themes: np.ndarray,
    lead: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson counts per (day, district, type); returns flat day, district, type per event."""
    nd, nt = len(DISTRICTS), len(themes)
    dd, di, ti = np.meshgrid(days, np.arange(nd), np.arange(nt), indexing="ij")
    dd, di, ti = dd.ravel(), di.ravel(), ti.ravel()
    lam = rate[di, ti] * np.exp(world.level(themes[ti], di, dd, -lead))
    counts = rng.poisson(lam)
    return np.repeat(dd, counts), np.repeat(di, counts), np.repeat(ti, counts)


def _primaries(
    rng: np.random.Generator,
    world: PlaceWorld,
    cfg: PlacesConfig,
    rate0: np.ndarray,
    days: np.ndarray,
    extra: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, ...]:
    """Primary (non-offspring) incidents of one block: day, district, type, lat, lon.

    Three sources: the background (latent level x persistent hotspots or diffuse), the
    emerging hotspots, and the incidents after releases (`extra`: day, district)."""
    themes = np.array([_CRIME_THEME.get(c, -1) for c in CRIME_TYPE])
    thin = thinning(days, world.first_day, cfg)
    bg = rate0 * (1 - cfg.emerging_share)
    ev_day, ev_d, ev_t = _daily_counts(rng, world, days, bg, themes, cfg.lead_weeks)
    ok = rng.random(len(ev_day)) < thin[ev_day - days[0]]
    ev_day, ev_d, ev_t = ev_day[ok], ev_d[ok], ev_t[ok]
    # emerging hotspots: rate per (episode, day) = district rate x share x amplitude x thinning
    eps = world.episodes
    week = (days - world.first_day) // 7
    amp = eps.amplitude(np.arange(week[0], week[-1] + 1))[:, week - week[0]]
    lam = (rate0.sum(axis=1) * cfg.emerging_share)[eps.district][:, None] * amp * thin[None, :]
    counts = rng.poisson(lam)
    e_idx, d_idx = np.nonzero(counts)
    reps = counts[e_idx, d_idx]
    em_ep = np.repeat(e_idx, reps)
    em_day = days[np.repeat(d_idx, reps)]
    # after releases
    inside = (extra[0] >= days[0]) & (extra[0] <= days[-1])
    rel_day, rel_d = extra[0][inside], extra[1][inside]
    tw = rate0.sum(axis=0) / rate0.sum()
    n_bg, n_em, n_rel = len(ev_day), len(em_day), len(rel_day)
    other_t = np.minimum(
        np.searchsorted(np.cumsum(tw), rng.random(n_em + n_rel), side="right"), len(tw) - 1
    )
    day = np.concatenate([ev_day, em_day, rel_day])
    dist = np.concatenate([ev_d, eps.district[em_ep], rel_d])
    ctype = np.concatenate([ev_t, other_t])
    # where: persistent hotspot or diffuse (background, releases), the episode's centre
    n = n_bg + n_em + n_rel
    emerging = np.zeros(n, dtype=bool)
    emerging[n_bg : n_bg + n_em] = True
    hot = (rng.random(n) < cfg.hotspot_share) & ~emerging
    h = (world.hot_cdf[dist] < rng.random(n)[:, None]).sum(axis=1)
    h = np.minimum(h, world.hot_cdf.shape[1] - 1)
    centre_lat = np.where(hot, world.hot_lat[dist, h], _DISTRICT_LAT[dist])
    centre_lon = np.where(hot, world.hot_lon[dist, h], _DISTRICT_LON[dist])
    centre_lat[emerging] = eps.lat[em_ep]
    centre_lon[emerging] = eps.lon[em_ep]
    spread = np.where(hot | emerging, HOTSPOT_KM_SD, np.where(_URBAN[dist], 0.02, 0.05))
    lat = centre_lat + spread * rng.standard_normal(n)
    lon = centre_lon + 1.4 * spread * rng.standard_normal(n)
    return day, dist, ctype, lat, lon


def incident_blocks(
    rng: np.random.Generator,
    world: PlaceWorld,
    cfg: PlacesConfig,
    persons: int,
    last_day: int,
    releases: Releases | None = None,
    release_rng: np.random.Generator | None = None,
) -> Iterator[Incidents]:
    """Incidents year by year (offspring may spill into the next year's dates)."""
    rate0 = base_rates(world, cfg, persons)
    rel = releases if releases is not None else Releases.empty()
    extra = release_incidents(release_rng or np.random.default_rng(0), rel, cfg)
    counter = 0
    day = world.first_day
    while day <= last_day:
        days = np.arange(day, day + BLOCK_DAYS)
        ev_day, ev_d, ev_t, lat, lon = _primaries(rng, world, cfg, rate0, days, extra)
        n = len(ev_day)
        evening = rng.random(n) < 0.6
        hour = np.where(evening, (21 + 3 * rng.standard_normal(n)) % 24, 24 * rng.random(n))
        t_us = ev_day * DAY_US + (hour * 3600 * SECOND_US).astype(np.int64)
        parts = [(t_us, ev_d, ev_t, lat, lon)]
        gen = parts[0]
        for _ in range(6):  # near-repeat cascade
            kids = rng.poisson(cfg.near_repeat_mean, len(gen[0]))
            if kids.sum() == 0:
                break
            src = np.repeat(np.arange(len(gen[0])), kids)
            m = len(src)
            delay = (rng.exponential(cfg.near_repeat_days, m) * DAY_US).astype(np.int64)
            km = cfg.near_repeat_km / 111.0
            gen = (
                gen[0][src] + delay,
                gen[1][src],
                gen[2][src],
                gen[3][src] + km * rng.standard_normal(m),
                gen[4][src] + 1.4 * km * rng.standard_normal(m),
            )
            parts.append(gen)
        occ, dist, ctype, la, lo = (np.concatenate([p[i] for p in parts]) for i in range(5))
        m = len(occ)  # every event of the block draws its numbers, then later ones are cut
        lag_s = 5400 * np.exp(1.2 * rng.standard_normal(m))
        late = rng.random(m) < 0.05
        lag_s = lag_s + late * rng.exponential(3 * 86400, m)
        reg = occ + (lag_s * SECOND_US).astype(np.int64)
        reclass = rng.random(m) < cfg.reclassify_share
        other = (ctype + 1 + (rng.random(m) * (len(CRIME_TYPE) - 1)).astype(np.int64)) % len(
            CRIME_TYPE
        )
        reg_day = reg // DAY_US
        fix = np.where(
            reclass, reg_day + 1 + (60 * np.exp(0.7 * rng.standard_normal(m))).astype(np.int64), -1
        )
        drop = rng.random(m) < cfg.drop_share
        drop_day = np.where(drop, reg_day + 30 + (rng.random(m) * 370).astype(np.int64), NEVER)
        inside = occ < (last_day + 1) * DAY_US
        yield Incidents(
            np.arange(counter, counter + m, dtype=np.int64)[inside],
            occ[inside],
            reg[inside],
            dist[inside],
            np.clip(la, -90, 90)[inside],
            np.clip(lo, -180, 180)[inside],
            ctype[inside],
            np.where(reclass, other, ctype)[inside],
            fix[inside],
            drop_day[inside],
        )
        counter += m
        day += BLOCK_DAYS


@dataclass
class Appeals:
    counter: np.ndarray
    submitted_us: np.ndarray
    district: np.ndarray
    district_missing: np.ndarray
    category: np.ndarray
    text: np.ndarray  # index into the category's texts, -1 for none
    drop_day: np.ndarray

    def frame(self, extracted_us: int, extraction_day: int) -> pl.DataFrame:
        idx = np.flatnonzero((self.submitted_us <= extracted_us) & (self.drop_day > extraction_day))
        cats = self.category[idx]
        texts = [
            APPEAL_TEXTS[APPEAL_CATEGORY[c]][t] if t >= 0 else None
            for c, t in zip(cats.tolist(), self.text[idx].tolist(), strict=True)
        ]
        d = self.district[idx]
        district = null_where(
            pl.Series("district", np.asarray(DISTRICT_CODES, dtype=object)[d], pl.String),
            self.district_missing[idx],
        )
        frame = pl.DataFrame(
            [
                make_ids("AP", self.counter[idx]).alias("appeal_id"),
                ts_series("submitted_at", self.submitted_us[idx]),
                pl.Series(
                    "region", np.asarray(REGION_CODES, dtype=object)[_DISTRICT_REGION[d]], pl.String
                ),
                district,
                pl.Series("category", np.asarray(APPEAL_CATEGORY, dtype=object)[cats], pl.String),
                pl.Series("text", texts, pl.String),
            ]
        )
        return frame.select(TABLES["appeals"].column_names)


def appeal_blocks(
    rng: np.random.Generator, world: PlaceWorld, cfg: PlacesConfig, persons: int, last_day: int
) -> Iterator[Appeals]:
    cw = np.array([cfg.appeal_category_weights.get(c, 0.0) for c in APPEAL_CATEGORY])
    themes = np.array([_APPEAL_THEME.get(c, -1) for c in APPEAL_CATEGORY])
    per_day = cfg.appeals_per_1k_year * persons / 1000 / 365.25
    rate0 = per_day * world.weight[:, None] * (cw / cw.sum())[None, :]
    counter = 0
    day = world.first_day
    while day <= last_day:
        days = np.arange(day, day + BLOCK_DAYS)
        ev_day, ev_d, ev_c = _daily_counts(rng, world, days, rate0, themes, 0)
        ok = rng.random(len(ev_day)) < _weekday(ev_day, 0.5)  # fewer appeals at weekends
        ev_day, ev_d, ev_c = ev_day[ok], ev_d[ok], ev_c[ok]
        m = len(ev_day)
        hour = np.clip(8 + 12 * rng.beta(2, 2, m), 0, 23.99)
        submitted = ev_day * DAY_US + (hour * 3600 * SECOND_US).astype(np.int64)
        n_texts = np.array([len(APPEAL_TEXTS[c]) for c in APPEAL_CATEGORY])[ev_c]
        text = np.where(
            rng.random(m) < cfg.text_share, (rng.random(m) * n_texts).astype(np.int64), -1
        )
        drop = rng.random(m) < cfg.drop_share
        drop_day = np.where(drop, ev_day + 10 + (rng.random(m) * 190).astype(np.int64), NEVER)
        missing = rng.random(m) < 0.02
        inside = ev_day <= last_day
        yield Appeals(
            np.arange(counter, counter + m, dtype=np.int64)[inside],
            submitted[inside],
            ev_d[inside],
            missing[inside],
            ev_c[inside],
            text[inside],
            drop_day[inside],
        )
        counter += m
        day += BLOCK_DAYS
