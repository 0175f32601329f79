"""Time as integers: days since 1970-01-01, a calendar-month grid, ages, timestamps.

The simulator works on int64 day numbers so that everything is vectorised; dates and
timestamps only appear when frames are written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from features.simulator.config import LagConfig

EPOCH = date(1970, 1, 1)
DAY_US = 86_400_000_000
SECOND_US = 1_000_000
NEVER = np.iinfo(np.int64).max // 4  # a day number later than any real one


def day_of(d: date) -> int:
    return (d - EPOCH).days


def date_of(day: int) -> date:
    return date.fromordinal(EPOCH.toordinal() + int(day))


def civil(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Year, month, day-of-month of day numbers."""
    d = days.astype("datetime64[D]")
    years = d.astype("datetime64[Y]")
    months = d.astype("datetime64[M]")
    y = years.astype(np.int64) + 1970
    m = (months - years).astype(np.int64) + 1
    dd = (d - months).astype(np.int64) + 1
    return y, m, dd


def completed_years(
    by: np.ndarray, bm: np.ndarray, bd: np.ndarray, y: int, m: int, d: int
) -> np.ndarray:
    """Age in completed years on (y, m, d), as the contract counts it (29 Feb -> 1 Mar)."""
    before = (m < bm) | ((m == bm) & (d < bd))
    return y - by - before.astype(np.int64)


def birthday(by: np.ndarray, bm: np.ndarray, bd: np.ndarray, years: int) -> np.ndarray:
    """Day number of the `years`-th birthday (29 February falls on 1 March in other years)."""
    month = (by + years - 1970).astype("datetime64[Y]").astype("datetime64[M]") + (bm - 1)
    return np.asarray((month.astype("datetime64[D]") + (bd - 1)).astype(np.int64))


@dataclass(frozen=True)
class MonthGrid:
    """Calendar months covering [first_day, last_day]; month k spans [starts[k], starts[k+1])."""

    starts: np.ndarray  # int64, length n+1
    first_day: int
    last_day: int

    @classmethod
    def covering(cls, first_day: int, last_day: int) -> MonthGrid:
        m0 = np.datetime64(date_of(first_day), "M")
        m1 = np.datetime64(date_of(last_day), "M")
        months = np.arange(m0, m1 + 2)
        starts = months.astype("datetime64[D]").astype(np.int64)
        return cls(starts, first_day, last_day)

    @property
    def n(self) -> int:
        return len(self.starts) - 1

    def month_of(self, days: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.starts, days, side="right") - 1

    def ymd(self, k: int) -> tuple[int, int, int]:
        d = date_of(int(self.starts[k]))
        return d.year, d.month, d.day


def _norm_cdf(x: np.ndarray) -> np.ndarray:
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return np.asarray(0.5 * (1.0 + erf(x / math.sqrt(2.0))))


@dataclass(frozen=True)
class LagDistribution:
    """Registration lag L in whole days: P(L = 0), geometric short lags, lognormal long tail.

    `cdf[x]` = P(L <= x) for x = 0..max_days; sampling uses the same table, so the
    probabilities used for p_true are exactly those the simulator draws from.
    """

    cdf: np.ndarray

    @classmethod
    def from_config(cls, cfg: LagConfig) -> LagDistribution:
        x = np.arange(cfg.max_days + 1, dtype=np.float64)
        same = np.zeros_like(x)
        same[0] = 1.0
        q = 1.0 / (1.0 + cfg.short_mean_days)  # geometric on 1, 2, ... with mean ~ short_mean
        short = np.where(x >= 1, q * (1 - q) ** np.maximum(x - 1, 0), 0.0)
        mu = math.log(cfg.long_median_days)
        upper = _norm_cdf((np.log(x + 0.5) - mu) / cfg.long_sigma)
        lower = _norm_cdf((np.log(np.maximum(x - 0.5, 1e-9)) - mu) / cfg.long_sigma)
        long = np.where(x >= 1, upper - lower, 0.0)
        p_long = 1.0 - cfg.p_same_day - cfg.p_short
        pmf = cfg.p_same_day * same + cfg.p_short * short / short.sum() + p_long * long / long.sum()
        pmf = pmf / pmf.sum()
        cdf = np.cumsum(pmf)
        cdf[-1] = 1.0
        return cls(cdf)

    def sample(self, u: np.ndarray) -> np.ndarray:
        """Inverse-CDF draw from uniforms `u`."""
        return np.minimum(np.searchsorted(self.cdf, u, side="right"), len(self.cdf) - 1)

    def F(self, x: np.ndarray) -> np.ndarray:  # noqa: N802 - the usual name of a CDF
        """P(L <= x) for integer x (0 below zero, 1 beyond the table)."""
        xi = np.asarray(x, dtype=np.int64)
        out = self.cdf[np.clip(xi, 0, len(self.cdf) - 1)]
        return np.where(xi < 0, 0.0, out)


def date_series(name: str, days: np.ndarray, valid: np.ndarray | None = None) -> pl.Series:
    s = pl.Series(name, days.astype(np.int32)).cast(pl.Date)
    if valid is not None:
        s = pl.select(pl.when(pl.Series(valid)).then(s).otherwise(None).alias(name)).to_series()
    return s


def ts_series(name: str, micros: np.ndarray) -> pl.Series:
    return pl.Series(name, micros.astype(np.int64)).cast(pl.Datetime("us", "UTC"))
