"""Hotspots that emerge and fade, and incidents that follow releases from custody.

Persistent hotspots alone make the last years' hotspot map the best possible forecast. Real
street crime also has places that heat up for some months (a new bar, a drug corner, a feud)
and then cool down, and districts where incidents rise for a few weeks after people return
from prison. Both are generated here, week by week, so that the truth (`places_truth.py`) can
integrate exactly the intensity the incidents were drawn from.

Emerging hotspots: each district has `emerging_per_district` slots; a slot holds a sequence
of episodes, each at a fresh location near the district centre, living L weeks
(L uniform in [emerging_weeks_min, emerging_weeks_max]) with amplitude 2·sin²(π·age/L) (it
grows, peaks and fades), followed by an exponential gap (mean `emerging_gap_weeks`). The
amplitude is scaled so that in the long run the episodes carry `emerging_share` of the
district's background incidents. Every slot has its own seed stream: a longer run only adds
episodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.simulator.config import PlacesConfig

HOTSPOT_KM_SD = 0.003  # degrees of latitude (~330 m); longitude spreads 1.4 times as far


@dataclass(frozen=True)
class Episodes:
    """Every emerging hotspot of the run: district, first week (from the world's first day,
    may be negative), lifetime in weeks, centre."""

    district: np.ndarray
    start_week: np.ndarray
    weeks: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    scale: float  # multiplies the amplitude so the long-run share is emerging_share

    def amplitude(self, week: np.ndarray) -> np.ndarray:
        """(episodes, len(week)) amplitude: 2·sin²(π·age/L) while alive, else 0 (times scale)."""
        age = week[None, :] - self.start_week[:, None] + 0.5
        life = self.weeks[:, None].astype(np.float64)
        alive = (age > 0) & (age < life)
        return np.where(alive, 2.0 * np.sin(np.pi * age / life) ** 2 * self.scale, 0.0)


def build_episodes(
    seed: np.random.SeedSequence,
    cfg: PlacesConfig,
    centre_lat: np.ndarray,
    centre_lon: np.ndarray,
    urban: np.ndarray,
    n_weeks: int,
) -> Episodes:
    """The episodes of every (district, slot) up to week `n_weeks`."""
    rows: list[tuple[int, int, int, float, float]] = []
    lo, hi = cfg.emerging_weeks_min, cfg.emerging_weeks_max
    for d in range(len(centre_lat)):
        spread = 0.012 if urban[d] else 0.03
        for j in range(cfg.emerging_per_district):
            rng = np.random.default_rng(np.random.SeedSequence(seed.entropy, spawn_key=(7, d, j)))
            t = -rng.uniform(0, hi)  # the first episode may have begun before the start
            while t < n_weeks:
                start = int(np.floor(t))
                life = int(rng.integers(lo, hi + 1))
                lat = centre_lat[d] + spread * rng.standard_normal()
                lon = centre_lon[d] + 1.4 * spread * rng.standard_normal()
                rows.append((d, start, life, lat, lon))
                t = start + life + rng.exponential(cfg.emerging_gap_weeks)
    arr = np.array(rows, dtype=np.float64).reshape(-1, 5)
    mean_life = (lo + hi) / 2
    alive_share = mean_life / (mean_life + cfg.emerging_gap_weeks)
    return Episodes(
        district=arr[:, 0].astype(np.int64),
        start_week=arr[:, 1].astype(np.int64),
        weeks=arr[:, 2].astype(np.int64),
        lat=arr[:, 3],
        lon=arr[:, 4],
        scale=1.0 / (cfg.emerging_per_district * alive_share),
    )


@dataclass(frozen=True)
class Releases:
    """Releases from custody into a district (day, district index), from the person registers."""

    day: np.ndarray
    district: np.ndarray

    @staticmethod
    def empty() -> Releases:
        return Releases(np.zeros(0, np.int64), np.zeros(0, np.int64))

    @staticmethod
    def concat(parts: list[Releases]) -> Releases:
        if not parts:
            return Releases.empty()
        return Releases(
            np.concatenate([p.day for p in parts]), np.concatenate([p.district for p in parts])
        )

    def sorted(self) -> Releases:
        order = np.lexsort((self.district, self.day))
        return Releases(self.day[order], self.district[order])


def release_incidents(
    rng: np.random.Generator, releases: Releases, cfg: PlacesConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Day and district of the extra incidents after each release: Poisson(release_incidents)
    per release, each `Exponential(release_days)` days after it (continuous, floored to days).

    Counts and delays come from two child streams, so that the draws for the earlier releases
    do not depend on how many later ones there are: a run that goes on to a second extraction
    leaves the first delivery's incidents unchanged."""
    rel = releases.sorted()
    count_rng, delay_rng = rng.spawn(2)
    n = count_rng.poisson(cfg.release_incidents, len(rel.day))
    src = np.repeat(np.arange(len(rel.day)), n)
    delay = np.floor(delay_rng.exponential(cfg.release_days, len(src))).astype(np.int64)
    return rel.day[src] + delay, rel.district[src]
