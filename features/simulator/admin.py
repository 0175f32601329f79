"""One month of administrative offences: traffic (barely related to propensity) and the
disorder offences whose recent history escalates into violence."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np

from features.contract.schema import ADMIN_CATEGORY, DETECTED_BY, SANCTION
from features.simulator.codes import (
    ADMIN_ARTICLE_CATEGORY,
    ADMIN_ARTICLES,
    ADMIN_FINE_HI,
    ADMIN_FINE_LO,
    MCI_KZT,
)
from features.simulator.config import SimulatorConfig
from features.simulator.population import Population
from features.simulator.timebase import DAY_US, SECOND_US

# P(detected_by) and P(sanction) per category, in the contract's enum order.
_DETECTED_BY = {  # camera, officer, complaint
    "traffic": (0.7, 0.3, 0.0),
    "public_order": (0.0, 0.7, 0.3),
    "alcohol": (0.0, 0.9, 0.1),
    "domestic": (0.0, 0.2, 0.8),
    "drugs": (0.0, 1.0, 0.0),
    "property": (0.0, 0.3, 0.7),
    "other": (0.2, 0.5, 0.3),
}
_SANCTION = {  # warning, fine, arrest, licence_suspension, other
    "traffic": (0.10, 0.78, 0.02, 0.10, 0.0),
    "public_order": (0.15, 0.60, 0.25, 0.0, 0.0),
    "alcohol": (0.20, 0.70, 0.10, 0.0, 0.0),
    "domestic": (0.40, 0.40, 0.20, 0.0, 0.0),
    "drugs": (0.0, 0.60, 0.40, 0.0, 0.0),
    "property": (0.20, 0.80, 0.0, 0.0, 0.0),
    "other": (0.30, 0.60, 0.0, 0.0, 0.10),
}
_TRAFFIC = ADMIN_CATEGORY.index("traffic")
_FINE = SANCTION.index("fine")
_CAMERA, _OFFICER, _COMPLAINT = (DETECTED_BY.index(x) for x in ("camera", "officer", "complaint"))
U_DAY, U_CAT, U_ART, U_DET, U_SANC, U_FINE, U_LAG, U_SEC, U_EXP, U_EXPDAY = range(10)
N_U = 10


def _cdf_table(rows: Mapping[str, tuple[float, ...]]) -> np.ndarray:
    t = np.array([rows[c] for c in ADMIN_CATEGORY], dtype=np.float64)
    return np.cumsum(t / t.sum(axis=1, keepdims=True), axis=1)


_DET_CDF = _cdf_table(_DETECTED_BY)
_SANC_CDF = _cdf_table(_SANCTION)


def _article_cdf() -> tuple[np.ndarray, np.ndarray]:
    width = int(np.bincount(ADMIN_ARTICLE_CATEGORY).max())
    index = np.zeros((len(ADMIN_CATEGORY), width), dtype=np.int64)
    cdf = np.ones((len(ADMIN_CATEGORY), width))
    for c in range(len(ADMIN_CATEGORY)):
        members = np.flatnonzero(c == ADMIN_ARTICLE_CATEGORY)
        w = np.array([ADMIN_ARTICLES[i].weight for i in members])
        index[c, : len(members)] = members
        index[c, len(members) :] = members[-1]
        cdf[c, : len(members)] = np.cumsum(w) / w.sum()
    return index, cdf


_ART_INDEX, _ART_CDF = _article_cdf()


@dataclass
class AdminOffences:
    person: np.ndarray
    day: np.ndarray
    category: np.ndarray
    article: np.ndarray
    detected_by: np.ndarray
    sanction: np.ndarray
    fine: np.ndarray  # NaN unless sanction is fine
    reg_us: np.ndarray
    expunge_day: np.ndarray  # -1: never

    @classmethod
    def concat(cls, parts: list[AdminOffences]) -> AdminOffences:
        names = [f.name for f in fields(cls)]
        if not parts:
            return cls(**{n: np.zeros(0, dtype=np.int64) for n in names})
        return cls(**{n: np.concatenate([getattr(p, n) for p in parts]) for n in names})


def _pick(cdf_rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    return np.asarray(np.minimum((cdf_rows < u[:, None]).sum(axis=1), cdf_rows.shape[1] - 1))


def _geometric(u: np.ndarray, mean: float) -> np.ndarray:
    q = 1.0 / (1.0 + mean)
    return np.asarray(np.floor(np.log1p(-u) / np.log1p(-q)), dtype=np.int64)


def draw_admin(
    rng: np.random.Generator,
    pop: Population,
    general: np.ndarray,
    traffic: np.ndarray,
    month_start: int,
    month_days: int,
    first_day: int,
    last_day: int,
    cs: np.ndarray,
    ce: np.ndarray,
    cfg: SimulatorConfig,
) -> AdminOffences:
    """Admin offences of one month; `general`/`traffic` are counts per person."""
    n = pop.n
    person = np.concatenate([np.repeat(np.arange(n), general), np.repeat(np.arange(n), traffic)])
    is_traffic = np.concatenate(
        [np.zeros(int(general.sum()), dtype=bool), np.ones(int(traffic.sum()), dtype=bool)]
    )
    u = rng.random((len(person), N_U))
    day = month_start + (u[:, U_DAY] * month_days).astype(np.int64)
    keep = (day >= first_day) & (day <= last_day) & ~((cs[person] <= day) & (day < ce[person]))
    person, is_traffic, day, u = person[keep], is_traffic[keep], day[keep], u[keep]

    ac = cfg.admin
    weights = np.array([ac.category_weights.get(c, 0.0) for c in ADMIN_CATEGORY])
    weights[_TRAFFIC] = 0.0
    cat_cdf = np.cumsum(weights / weights.sum())
    general_cat = np.minimum(np.searchsorted(cat_cdf, u[:, U_CAT], side="right"), len(cat_cdf) - 1)
    category = np.where(is_traffic, _TRAFFIC, general_cat)
    col = (_ART_CDF[category] < u[:, U_ART][:, None]).sum(axis=1)
    article = _ART_INDEX[category, np.minimum(col, _ART_INDEX.shape[1] - 1)]
    detected_by = _pick(_DET_CDF[category], u[:, U_DET])
    sanction = _pick(_SANC_CDF[category], u[:, U_SANC])
    lo, hi = ADMIN_FINE_LO[article], ADMIN_FINE_HI[article]
    mci = lo + (u[:, U_FINE] * (hi - lo + 1)).astype(np.int64)
    fine = np.where(sanction == _FINE, mci * MCI_KZT, np.nan)

    lag = np.where(
        detected_by == _CAMERA,
        _geometric(u[:, U_LAG], 2.0),
        np.where(
            detected_by == _OFFICER,
            (u[:, U_LAG] < 0.2).astype(np.int64),
            _geometric(u[:, U_LAG], 5.0),
        ),
    )
    reg_us = (day + lag) * DAY_US + (u[:, U_SEC] * 86_400).astype(np.int64) * SECOND_US
    expunged = u[:, U_EXP] < ac.expunge_share
    expunge_day = np.where(expunged, day + lag + 365 + (u[:, U_EXPDAY] * 730).astype(np.int64), -1)
    return AdminOffences(
        person, day, category, article, detected_by, sanction, fine, reg_us, expunge_day
    )
