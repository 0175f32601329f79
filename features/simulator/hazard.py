"""The pieces of the monthly crime hazard, shared by the simulation and by p_true.

Keeping them in one place is what makes p_true honest: the probability is computed with
exactly the functions the simulator draws from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.contract.schema import CRIME_CATEGORY, GRAVITY, STATUS
from features.simulator.codes import (
    ARTICLE_CATEGORY,
    ARTICLE_DETECT,
    ARTICLE_GRAVITY,
    ARTICLES,
    REGION_CODES,
    VIOLENT,
)
from features.simulator.config import SimulatorConfig
from features.simulator.timebase import LagDistribution, day_of

MAX_DETECT = 0.98
NO_DAY = -(10**9)  # "no such day" (no custody slot, no release yet)


def age_factor(age: np.ndarray, min_age: int, peak: float, spread: float) -> np.ndarray:
    """Log-normal bump in (age - 13): rises steeply to the peak, long tail into old age."""
    x = np.maximum(age - 13.0, 1e-6)
    f = np.exp(-((np.log(x) - np.log(peak - 13.0)) ** 2) / (2.0 * spread**2))
    return np.where(age >= min_age, f, 0.0)


def status_multiplier(cfg: SimulatorConfig) -> np.ndarray:
    """Lookup by status code; the last entry (index -1) is 'no status yet' (under 16)."""
    table = [cfg.crime.status_multiplier.get(s, 1.0) for s in STATUS]
    return np.array([*table, 1.0])


def category_weights(cfg: SimulatorConfig) -> np.ndarray:
    w = np.array([cfg.crime.category_weights.get(c, 0.0) for c in CRIME_CATEGORY])
    return np.asarray(w / w.sum())


def detect_prob(article: np.ndarray, bias: np.ndarray, cfg: SimulatorConfig) -> np.ndarray:
    """P(an offence is ever detected and registered): the article's rate, times the person's
    measurement-bias factor for low-gravity articles only (capped)."""
    biased = np.isin(
        ARTICLE_GRAVITY[article], [GRAVITY.index(g) for g in cfg.crime.biased_gravities]
    )
    return np.asarray(np.minimum(ARTICLE_DETECT[article] * np.where(biased, bias, 1.0), MAX_DETECT))


def practice_factor(region: np.ndarray, day: np.ndarray | int, cfg: SimulatorConfig) -> np.ndarray:
    """The registration-practice multiplier of each (person's region, day): the product of
    every `crime.practice_changes` entry of that region in force on that day, else 1."""
    factor = np.ones(np.broadcast(region, day).shape)
    for change in cfg.crime.practice_changes:
        hit = (region == REGION_CODES.index(change.region)) & (
            np.asarray(day) >= day_of(change.from_date)
        )
        factor = np.where(hit, factor * change.record_rate_multiplier, factor)
    return factor


@dataclass(frozen=True)
class DetectionWeights:
    """Per person: sum_c w_c * dbar_c (all categories) and w_violent * dbar_violent, where
    dbar_c is the expected detection probability of an offence of category c."""

    total: np.ndarray
    violent: np.ndarray


def detection_weights(bias: np.ndarray, cfg: SimulatorConfig) -> DetectionWeights:
    w = category_weights(cfg)
    values, inverse = np.unique(bias, return_inverse=True)
    total = np.zeros(len(values))
    violent = np.zeros(len(values))
    for vi, b in enumerate(values):
        for ci in range(len(CRIME_CATEGORY)):
            members = np.flatnonzero(ci == ARTICLE_CATEGORY)
            weights = np.array([ARTICLES[i].weight for i in members])
            d = detect_prob(members, np.full(len(members), b), cfg)
            dbar = float((weights * d).sum() / weights.sum())
            total[vi] += w[ci] * dbar
            if ci == VIOLENT:
                violent[vi] = w[ci] * dbar
    return DetectionWeights(total[inverse], violent[inverse])


@dataclass(frozen=True)
class Window:
    """The label window (as_of, as_of + horizon] of one as-of date, in day numbers.

    `prefix[j]` = sum of F(end - D) over D = first .. first + j - 1, where F is the lag CDF:
    the chance that an offence on day D is registered by the window's end.
    """

    as_of: int
    first: int
    last: int
    prefix: np.ndarray

    @classmethod
    def build(cls, as_of: int, horizon: int, lag: LagDistribution) -> Window:
        days = np.arange(as_of + 1, as_of + horizon + 1)
        h = lag.F(as_of + horizon - days)
        return cls(as_of, as_of + 1, as_of + horizon, np.concatenate([[0.0], np.cumsum(h)]))

    def total(self, lo: np.ndarray | int, hi: np.ndarray | int) -> np.ndarray:
        """Sum of F(end - D) for D in [lo, hi] clipped to the window (0 when empty)."""
        lo_c = np.clip(np.asarray(lo) - self.first, 0, self.last - self.first + 1)
        hi_c = np.clip(np.asarray(hi) - self.first + 1, 0, self.last - self.first + 1)
        return np.where(hi_c > lo_c, self.prefix[hi_c] - self.prefix[np.minimum(lo_c, hi_c)], 0.0)


def pending_probability(
    offence_day: np.ndarray, detect: np.ndarray, window: Window, lag: LagDistribution
) -> np.ndarray:
    """P(registered in the window | committed on `offence_day` <= as_of, not registered by
    as_of): detection and the lag are still unknown at as_of."""
    a = window.as_of - offence_day
    f_a = lag.F(a)
    f_b = lag.F(window.last - offence_day)
    return np.asarray(detect * (f_b - f_a) / np.maximum(1.0 - detect * f_a, 1e-12))
