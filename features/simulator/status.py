"""Social status: a monthly Markov chain per person from age 16, and its spells.

Status is exogenous to offending (it depends on age, sex and propensity, never on the
simulated crimes), so the truth may condition on its realised path. Unemployment and
homelessness raise the crime hazard; they are also more likely for high-propensity persons,
which is the realistic confounding an audit should notice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from features.contract.schema import STATUS, TABLES
from features.simulator import keyed
from features.simulator.config import SimulatorConfig
from features.simulator.population import Population
from features.simulator.timebase import (
    DAY_US,
    NEVER,
    SECOND_US,
    MonthGrid,
    birthday,
    completed_years,
    date_series,
)

NONE = -1  # before age 16: no status
EMPLOYED, UNEMPLOYED, STUDENT, RETIRED, ASSISTANCE, HOMELESS, UNKNOWN = (
    STATUS.index(s)
    for s in (
        "employed",
        "unemployed",
        "student",
        "retired",
        "social_assistance",
        "homeless",
        "unknown",
    )
)
RISKY = (UNEMPLOYED, HOMELESS, ASSISTANCE)


@dataclass
class StatusPaths:
    """`codes[i, k]`: status of person i at the start of month k (-1: none yet)."""

    codes: np.ndarray  # int8, shape (n, months + 1)

    def at_days(self, person: np.ndarray, days: np.ndarray, grid: MonthGrid) -> np.ndarray:
        k = np.clip(grid.month_of(days), 0, self.codes.shape[1] - 1)
        return np.asarray(self.codes[person, k], dtype=np.int64)


def _pick(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One category per row of `weights` (rows need not be normalised)."""
    cdf = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * cdf[:, -1]
    return np.asarray(np.minimum((cdf < u[:, None]).sum(axis=1), weights.shape[1] - 1))


def _destinations(cfg: SimulatorConfig, src: np.ndarray, log_u: np.ndarray) -> np.ndarray:
    sc = cfg.status
    table = np.zeros((len(STATUS), len(STATUS)))
    for s, dest in sc.destinations.items():
        for d, w in dest.items():
            table[STATUS.index(s), STATUS.index(d)] = w
    w = table[src]
    tilt = np.exp(sc.propensity_on_risky * log_u)
    for r in RISKY:
        w[:, r] *= tilt
    return np.asarray(w)


def simulate_status(
    rng: np.random.Generator, pop: Population, cfg: SimulatorConfig, grid: MonthGrid
) -> StatusPaths:
    sc = cfg.status
    n, months = pop.n, grid.n
    codes = np.full((n, months + 1), NONE, dtype=np.int8)
    leave = np.array([sc.leave_monthly.get(s, 0.0) for s in STATUS])
    retire_at = np.where(pop.male, sc.retirement_age_male, sc.retirement_age_female)
    tilt = np.exp(sc.propensity_on_risky * pop.log_u)

    y, m, d = grid.ymd(0)
    age = completed_years(pop.by, pop.bm, pop.bd, y, m, d)
    adult = age >= sc.min_age
    init = np.zeros((n, len(STATUS)))
    init[:, EMPLOYED] = 0.70
    init[:, UNEMPLOYED] = 0.14 * tilt
    init[:, ASSISTANCE] = 0.06 * tilt
    init[:, HOMELESS] = 0.006 * tilt**2
    init[:, UNKNOWN] = 0.04
    init[age < 23, STUDENT] = 2.0
    init[age >= retire_at] = 0.0
    init[age >= retire_at, RETIRED] = 1.0
    state = np.where(adult, _pick(rng, init), NONE)
    codes[:, 0] = state

    for k in range(months):
        y, m, d = grid.ymd(k + 1)
        age = completed_years(pop.by, pop.bm, pop.bd, y, m, d)
        new = state.copy()
        active = state != NONE
        p = np.where(active, leave[np.maximum(state, 0)], 0.0)
        p = np.where(state == EMPLOYED, p * np.sqrt(tilt), p)
        p = np.where((state == STUDENT) & (age >= 24), 0.12, p)
        movers = np.flatnonzero(rng.random(n) < p)
        if len(movers):
            dest = _pick(rng, _destinations(cfg, state[movers], pop.log_u[movers]))
            new[movers] = dest
        retiring = active & (new != RETIRED) & (age >= retire_at) & (rng.random(n) < 0.15)
        new[retiring] = RETIRED
        entering = (~active) & (age >= sc.min_age)
        if entering.any():
            w = np.zeros((int(entering.sum()), len(STATUS)))
            w[:, STUDENT] = 0.8
            w[:, UNEMPLOYED] = 0.1 * tilt[entering]
            w[:, EMPLOYED] = 0.1
            new[entering] = _pick(rng, w)
        state = new
        codes[:, k + 1] = state
    return StatusPaths(codes)


@dataclass
class Spells:
    person: np.ndarray
    status: np.ndarray
    valid_from: np.ndarray
    valid_to: np.ndarray  # NEVER while ongoing at the end of the simulation
    recorded_us: np.ndarray
    next_recorded_us: np.ndarray  # when the register learns that the spell ended

    def frame(self, pop: Population, extracted_us: int) -> pl.DataFrame:
        """Spells recorded by the extraction; an end is shown once the next spell is recorded."""
        known = self.recorded_us <= extracted_us
        ended = self.next_recorded_us <= extracted_us
        idx = np.flatnonzero(known)
        frame = pl.DataFrame(
            [
                pop.person_id.gather(self.person[idx]).alias("person_id"),
                pl.Series("status", np.asarray(STATUS, dtype=object)[self.status[idx]], pl.String),
                date_series("valid_from", self.valid_from[idx]),
                date_series("valid_to", self.valid_to[idx], ended[idx]),
                pl.Series("recorded_at", self.recorded_us[idx]).cast(pl.Datetime("us", "UTC")),
            ]
        )
        return frame.select(TABLES["social_status"].column_names)


def extract_spells(
    seed: int,
    paths: StatusPaths,
    pop: Population,
    cfg: SimulatorConfig,
    grid: MonthGrid,
) -> Spells:
    """Runs of equal status become spells; persons outside social registers get none.

    Random numbers are keyed by (person, month) so that a spell is the same however long
    the simulation runs.
    """
    codes = paths.codes
    covered = keyed.uniform(seed, 11, pop.counter) < cfg.status.coverage
    first = codes[:, 0] != NONE
    change = (codes[:, 1:] != codes[:, :-1]) & (codes[:, 1:] != NONE)
    pi0 = np.flatnonzero(first)
    pc, kc = np.nonzero(change)
    kc = kc + 1  # the new status holds from the start of month kc
    person = np.concatenate([pi0, pc])
    month = np.concatenate([np.zeros(len(pi0), dtype=np.int64), kc])
    order = np.lexsort((month, person))
    person, month = person[order], month[order]
    status = codes[person, month].astype(np.int64)

    sixteen = birthday(pop.by, pop.bm, pop.bd, cfg.status.min_age)
    prev = np.where(month > 0, codes[person, np.maximum(month - 1, 0)], NONE)
    lengths = np.diff(grid.starts)
    key = (pop.counter[person], month)
    trans = grid.starts[np.maximum(month - 1, 0)] + (
        keyed.uniform(seed, 12, *key) * lengths[np.maximum(month - 1, 0)]
    ).astype(np.int64)
    back = grid.starts[0] - (keyed.uniform(seed, 13, *key) * 8 * 365).astype(np.int64)
    valid_from = np.where(month == 0, back, np.where(prev == NONE, sixteen[person], trans))
    valid_from = np.maximum(valid_from, sixteen[person])

    lag = keyed.exponential(seed, 14, cfg.status.record_lag_mean_days, *key).astype(np.int64)
    second = (keyed.uniform(seed, 15, *key) * 86_400).astype(np.int64)
    recorded = (valid_from + lag) * DAY_US + second * SECOND_US
    same_next = np.zeros(len(person), dtype=bool)
    same_next[:-1] = person[1:] == person[:-1]
    valid_to = np.full(len(person), NEVER, dtype=np.int64)
    valid_to[:-1] = np.where(same_next[:-1], valid_from[1:] - 1, NEVER)
    next_rec = np.full(len(person), np.iinfo(np.int64).max, dtype=np.int64)
    next_rec[:-1] = np.where(same_next[:-1], recorded[1:], next_rec[:-1])
    # A spell must not end before it starts; collapse degenerate one-day overlaps.
    keep = covered[person] & (valid_to >= valid_from)
    return Spells(
        person[keep], status[keep], valid_from[keep], valid_to[keep], recorded[keep], next_rec[keep]
    )
