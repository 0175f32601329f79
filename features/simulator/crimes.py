"""One month of criminal offences for a chunk of persons: counts, days, category, article,
co-offending, detection, registration lag and what the justice system decides.

Every offence consumes a fixed number of random numbers whatever happens to it, so that
switching the measurement bias on or off changes registrations but not offending.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from features.contract.schema import CRIME_CATEGORY
from features.simulator.codes import (
    ARTICLE_GRAVITY,
    ARTICLE_STREET,
    DISTRICTS,
    VIOLENT,
    article_cdf_by_category,
)
from features.simulator.config import SimulatorConfig
from features.simulator.hazard import category_weights, detect_prob, practice_factor
from features.simulator.justice import N_NORMAL, N_UNIFORM, Decision, decide
from features.simulator.population import Population
from features.simulator.timebase import DAY_US, SECOND_US, LagDistribution

# Uniform columns per offence.
U_DAY, U_CAT, U_ART, U_DET, U_LAG, U_CO = range(6)
U_STREET, U_DIST, U_ERR, U_ERRCAT, U_DOUBLE, U_SEC = range(6, 12)
N_U = 12
# Normal columns per offence (after the justice ones).
Z_FIX, Z_DOUBLE = N_NORMAL, N_NORMAL + 1
N_Z = N_NORMAL + 2


@dataclass
class Offences:
    """Criminal offences (committed, detected or not) with their latent future."""

    person: np.ndarray
    day: np.ndarray
    category: np.ndarray
    article: np.ndarray
    detect_p: np.ndarray
    detected: np.ndarray
    reg_day: np.ndarray
    reg_us: np.ndarray
    case: np.ndarray  # case counter; co-offenders share their lead's
    street: np.ndarray
    district: np.ndarray
    kind: np.ndarray
    final_day: np.ndarray
    referral_day: np.ndarray
    prison: np.ndarray
    prison_months: np.ndarray
    non_custodial: np.ndarray
    nc_months: np.ndarray
    wrong_category: np.ndarray  # -1, or the category shown until fix_day
    fix_day: np.ndarray
    double_delete_day: np.ndarray  # -1, or the day an erroneous double entry is deleted

    @classmethod
    def concat(cls, parts: list[Offences]) -> Offences:
        names = [f.name for f in fields(cls)]
        if not parts:
            return cls(**{n: np.zeros(0, dtype=np.int64) for n in names})
        return cls(**{n: np.concatenate([getattr(p, n) for p in parts]) for n in names})


_ARTICLE_INDEX, _ARTICLE_CDF = article_cdf_by_category()
_REGION_DISTRICTS = np.array(
    [
        [i for i, d in enumerate(DISTRICTS) if d.region == r]
        for r in sorted({d.region for d in DISTRICTS})
    ]
)


def pair_offences(
    pop: Population,
    person: np.ndarray,
    day: np.ndarray,
    category: np.ndarray,
    u_co: np.ndarray,
    share: float,
    cs: np.ndarray,
    ce: np.ndarray,
) -> np.ndarray:
    """Index of each offence's lead (itself unless paired with another person's offence of
    the same region and category this month, on a day the partner is free)."""
    k = len(person)
    lead = np.arange(k)
    if k < 2 or share <= 0:
        return lead
    partner = u_co < share
    leads = np.flatnonzero(~partner)
    cand = np.flatnonzero(partner)
    if len(leads) == 0 or len(cand) == 0:
        return lead
    key = pop.region[person] * len(CRIME_CATEGORY) + category
    order = leads[np.argsort(key[leads], kind="stable")]
    sorted_keys = key[order]
    lo = np.searchsorted(sorted_keys, key[cand], side="left")
    hi = np.searchsorted(sorted_keys, key[cand], side="right")
    pick = lo + np.floor(u_co[cand] / share * np.maximum(hi - lo, 1)).astype(np.int64)
    ok = hi > lo
    chosen = order[np.minimum(pick, len(order) - 1)]
    p = person[cand]
    free = ~((cs[p] <= day[chosen]) & (day[chosen] < ce[p]))
    ok &= (person[chosen] != p) & free
    lead[cand[ok]] = chosen[ok]
    return lead


def draw_crimes(
    rng: np.random.Generator,
    pop: Population,
    counts: np.ndarray,
    violent_share: np.ndarray,
    month_start: int,
    month_days: int,
    first_day: int,
    last_day: int,
    cs: np.ndarray,
    ce: np.ndarray,
    next_case: int,
    lag: LagDistribution,
    cfg: SimulatorConfig,
) -> tuple[Offences, Decision]:
    """Offences of one month; `counts` per person, `violent_share` P(violent | offence)."""
    person = np.repeat(np.arange(pop.n), counts)
    k = len(person)
    u = rng.random((k, N_U))
    uj = rng.random((k, N_UNIFORM))
    z = rng.standard_normal((k, N_Z))
    day = month_start + (u[:, U_DAY] * month_days).astype(np.int64)
    keep = (day >= first_day) & (day <= last_day) & ~((cs[person] <= day) & (day < ce[person]))
    person, day, u, uj, z = person[keep], day[keep], u[keep], uj[keep], z[keep]
    k = len(person)

    w = category_weights(cfg)
    pv = violent_share[person]
    probs = np.tile(w, (k, 1)) * ((1.0 - pv) / np.maximum(1.0 - w[VIOLENT], 1e-12))[:, None]
    probs[:, VIOLENT] = pv
    cdf = np.cumsum(probs, axis=1)
    category = np.minimum((cdf < (u[:, U_CAT] * cdf[:, -1])[:, None]).sum(axis=1), len(w) - 1)
    col = (_ARTICLE_CDF[category] < u[:, U_ART][:, None]).sum(axis=1)
    article = _ARTICLE_INDEX[category, np.minimum(col, _ARTICLE_INDEX.shape[1] - 1)]
    lag_days = lag.sample(u[:, U_LAG])

    lead = pair_offences(pop, person, day, category, u[:, U_CO], cfg.crime.co_offending, cs, ce)
    day, article, lag_days = day[lead], article[lead], lag_days[lead]
    case = next_case + lead

    bias = pop.bias[person]
    if cfg.crime.practice_changes:  # a registration-practice change scales the same factor
        bias = bias * practice_factor(pop.region[person], day, cfg)
    detect_p = detect_prob(article, bias, cfg)
    detected = u[:, U_DET] < detect_p
    reg_day = day + lag_days
    decision: Decision = decide(reg_day, ARTICLE_GRAVITY[article], uj, z, cfg)
    street = u[:, U_STREET] < ARTICLE_STREET[article]
    # One case in five happens in another district of the home region.
    x = u[:, U_DIST] * 5
    other = _REGION_DISTRICTS[
        pop.region[person], ((x % 1.0) * _REGION_DISTRICTS.shape[1]).astype(np.int64)
    ]
    district = np.where(x < 1.0, other, pop.district[person])

    cc = cfg.corrections
    wrong = u[:, U_ERR] < cc.category_error_share
    alt = (category + 1 + (u[:, U_ERRCAT] * (len(w) - 1)).astype(np.int64)) % len(w)
    fix_day = reg_day + 1 + (cc.fix_median_days * np.exp(0.8 * z[:, Z_FIX])).astype(np.int64)
    double = u[:, U_DOUBLE] < cc.double_entry_share
    delete = (
        reg_day
        + 1
        + (cc.double_entry_delete_median_days * np.exp(0.8 * z[:, Z_DOUBLE])).astype(np.int64)
    )
    return Offences(
        person=person,
        day=day,
        category=category,
        article=article,
        detect_p=detect_p,
        detected=detected,
        reg_day=reg_day,
        reg_us=reg_day * DAY_US + (u[:, U_SEC] * 86_400).astype(np.int64) * SECOND_US,
        case=case,
        street=street,
        district=district,
        kind=decision.kind,
        final_day=decision.final_day,
        referral_day=decision.referral_day,
        prison=decision.prison,
        prison_months=decision.prison_months,
        non_custodial=decision.non_custodial,
        nc_months=decision.nc_months,
        wrong_category=np.where(wrong, alt, -1),
        fix_day=np.where(wrong, fix_day, -1),
        double_delete_day=np.where(double, delete, -1),
    ), decision
