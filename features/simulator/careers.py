"""The monthly loop over a chunk of persons: hazards, offences, custody, and p_true's
future part, accumulated with the same hazard the offences were drawn from.

Crime hazard of person i in month m (per month, offences are Poisson, days uniform):

    lambda_i(m) = c0 * u_i * age(m) * status(m) * release(m) * (1 + w_v * gamma * E_i(m))

where E is the exponentially decayed count of recent escalating admin offences (only the
violent category is excited) and release(m) = 1 + A exp(-(t_m - r)/tau) after a release r.
Offences on days in custody do not happen (incapacitation).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from features.contract.schema import ADMIN_CATEGORY
from features.simulator.admin import AdminOffences, draw_admin
from features.simulator.codes import VIOLENT
from features.simulator.config import SimulatorConfig
from features.simulator.crimes import Offences, draw_crimes
from features.simulator.hazard import (
    NO_DAY,
    DetectionWeights,
    Window,
    age_factor,
    category_weights,
    detection_weights,
    practice_factor,
    status_multiplier,
)
from features.simulator.justice import Custody, CustodyView, Decision
from features.simulator.population import Population
from features.simulator.status import StatusPaths
from features.simulator.timebase import LagDistribution, MonthGrid, completed_years


@dataclass
class Careers:
    offences: Offences
    admin: AdminOffences
    releases: dict[str, np.ndarray]
    future: dict[int, np.ndarray]  # as_of day -> expected registered-in-window count


def _release_factor(view: CustodyView, t0: int, t1: int, boost: float, tau: float) -> np.ndarray:
    last = view.last_release(t1)
    since = np.maximum(0, t0 - last)
    return np.where(last > NO_DAY, 1.0 + boost * np.exp(-since / tau), 1.0)


def simulate_careers(
    rngs: tuple[np.random.Generator, np.random.Generator, np.random.Generator],
    pop: Population,
    paths: StatusPaths,
    cfg: SimulatorConfig,
    grid: MonthGrid,
    windows: list[Window],
    lag: LagDistribution,
) -> Careers:
    rng_crime, rng_admin, rng_custody = rngs
    cc, ac, jc = cfg.crime, cfg.admin, cfg.justice
    first_day, last_day = grid.first_day, grid.last_day
    n = pop.n
    u = pop.u
    u_admin = u**ac.propensity_exponent
    u_traffic = u**0.2
    smult = status_multiplier(cfg)
    dw = detection_weights(pop.bias, cfg)
    w_violent = float(category_weights(cfg)[VIOLENT])
    gamma = cc.violent_excitation
    escalating = np.array([ADMIN_CATEGORY.index(c) for c in ac.escalating], dtype=np.int64)
    decay = float(np.exp(-1.0 / ac.excitation_tau_months))

    custody = Custody.initial(rng_custody, pop, cfg, first_day)
    excitation = np.zeros(n)
    future = {w.as_of: np.zeros(n) for w in windows}
    snapshots: dict[int, CustodyView] = {}
    windows = sorted(windows, key=lambda w: w.as_of)
    crime_parts: list[Offences] = []
    admin_parts: list[AdminOffences] = []
    next_case = 0

    for m in range(grid.n):
        t0, t1 = int(grid.starts[m]), int(grid.starts[m + 1])
        days = t1 - t0
        custody.apply_through(t0 - 1)
        view = custody.view
        y, mo, d = grid.ymd(m)
        age = completed_years(pop.by, pop.bm, pop.bd, y, mo, d)
        status = smult[paths.codes[:, m].astype(np.int64)]
        rf = _release_factor(view, t0, t1, jc.post_release_boost, jc.post_release_tau_days)
        core = (
            cc.monthly_rate * u * age_factor(age, cc.min_age, cc.age_peak, cc.age_spread) * status
        )
        capped = np.minimum(excitation, ac.excitation_cap)
        excite = w_violent * gamma * capped
        lam = core * rf * (1.0 + excite)
        violent_share = w_violent * (1.0 + gamma * capped) / (1.0 + excite)

        counts = rng_crime.poisson(lam)
        offences, decision = draw_crimes(
            rng_crime,
            pop,
            counts,
            violent_share,
            t0,
            days,
            first_day,
            last_day,
            view.cs,
            view.ce,
            next_case,
            lag,
            cfg,
        )
        next_case += len(offences.person)
        crime_parts.append(offences)
        registered = offences.detected & (offences.reg_day <= last_day)
        custody.add_events(
            offences.person[registered],
            offences.reg_day[registered],
            _select(decision, registered),
        )

        admin_age = age_factor(age, ac.min_age, ac.age_peak, ac.age_spread)
        lam_general = ac.monthly_rate * u_admin * admin_age * status * rf
        lam_general = lam_general * (1.0 + ac.self_excitation * capped)
        lam_traffic = ac.traffic_monthly_rate * u_traffic * (age >= 18)
        admin = draw_admin(
            rng_admin,
            pop,
            rng_admin.poisson(lam_general),
            rng_admin.poisson(lam_traffic),
            t0,
            days,
            first_day,
            last_day,
            view.cs,
            view.ce,
            cfg,
        )
        admin_parts.append(admin)

        for w in windows:
            lo, hi = max(t0, w.first), min(t1 - 1, w.last)
            if lo > hi:
                continue
            if w.as_of >= t0:  # the as-of month itself: the state at its start is known
                known, rf_known = view, rf
            else:
                known = snapshots[w.as_of]
                rf_known = _release_factor(
                    known, t0, t1, jc.post_release_boost, jc.post_release_tau_days
                )
            free = w.total(lo, hi) - w.total(np.maximum(lo, known.cs), np.minimum(hi, known.ce - 1))
            dm = _month_weights(dw, pop, t0, cfg)
            weight = dm.total + gamma * capped * dm.violent
            future[w.as_of] += core * rf_known * weight * free / days
        for w in windows:
            if t0 <= w.as_of < t1:
                custody.apply_through(w.as_of)
                snapshots[w.as_of] = custody.snapshot()

        hits = admin.person[np.isin(admin.category, escalating)]
        excitation = excitation * decay + np.bincount(hits, minlength=n)

    return Careers(
        Offences.concat(crime_parts),
        AdminOffences.concat(admin_parts),
        custody.finish(last_day),
        future,
    )


def _month_weights(
    dw: DetectionWeights, pop: Population, t0: int, cfg: SimulatorConfig
) -> DetectionWeights:
    """The detection weights of the month starting on day `t0`: `dw` unless a
    registration-practice change is in force (changes start on the first of a month)."""
    if not cfg.crime.practice_changes:
        return dw
    factor = practice_factor(pop.region, t0, cfg)
    if np.all(factor == 1.0):
        return dw
    return detection_weights(pop.bias * factor, cfg)


def _select(d: Decision, mask: np.ndarray) -> Decision:
    return Decision(**{f.name: getattr(d, f.name)[mask] for f in fields(Decision)})
