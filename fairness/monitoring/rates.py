"""Registration-rate drift: the mean of the model's recent-count inputs per group, now against
the reference, as a rate ratio with an interval that allows for overdispersion (pure).

Why a check of its own: a change in how a region records offences (its police register minor
offences twice as often) raises the number of recent registrations per person, but most
persons have no recent case, so the extra registrations move a zero count to one for a few
per cent of them. PSI and KS on the count's bins read that as a negligible shift (PSI 0.01-0.05
for a ×2 record rate of low-gravity offences on the simulated deliveries, bench_monitoring.md
§6), whatever the population's size. The mean count per person is the figure such a change
moves: it is the registration rate.

For each configured input (cases in the last 90 days, minor offences in the last year, ...)
and each group (overall, and per label of each group column), with ``m`` the mean count per
person and ``n`` the persons with a value:

- **ratio** ``R = m_now / m_ref``, its interval ``exp(log R ± z·se)``,
  ``se² = v_now / (n_now·m_now²) + v_ref / (n_ref·m_ref²)`` with ``v`` the sample variance of
  the per-person counts. That is a quasi-Poisson variance whose dispersion ``v / m`` is
  estimated from the data (equivalently the variance a bootstrap over persons estimates: the
  unit tests compare the two), so persons with many cases widen the interval as they should; a
  Poisson interval would be too narrow by the square root of the dispersion.
- **relative** ratio ``R_g / R_rest``, ``rest`` the persons of the other groups of the same
  column, with the four terms in its ``se²`` (disjoint persons). A group found outside the
  band is left out of the others' rest (`_relative`), so one region that moved does not make
  the others look as if they had moved the other way. A change of practice in one
  region moves its ratio against the others'; a trend common to every group (the population
  with a record getting older, offending falling everywhere) moves both and cancels. Against
  the fixed reference alone, the no-drift simulated control's recent-case rate rose by about a
  fifth in two years, so the raw ratio of a group is reported, not alerted on.

The status is ``alert`` when, for a group, the relative ratio's interval lies wholly outside
``[1/band, band]`` and, overall (no rest to compare with: a change everywhere at once), when
the raw ratio's interval lies wholly outside ``[1/overall_band, overall_band]``;
``insufficient_evidence`` when a side has fewer than ``min_events`` counted events or fewer than
``min_group_size`` persons (for the relative ratio, the rest as well); else ``ok``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict
from scipy import special

from fairness.monitoring.config import RateSettings
from fairness.monitoring.groups import ALL, FloatArray, groupings

RateStatus = Literal["ok", "alert", "insufficient_evidence"]


class RateDrift(BaseModel):
    """One input's mean count per person in one group, now vs the reference."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: str
    group_column: str
    group: str
    n_reference: int
    n_current: int
    events_reference: float
    events_current: float
    mean_reference: float | None
    mean_current: float | None
    dispersion: float | None  # variance / mean of the current counts (1: Poisson)
    ratio: float | None
    ratio_lower: float | None
    ratio_upper: float | None
    relative: float | None  # ratio of the group / ratio of the rest of its column
    relative_lower: float | None
    relative_upper: float | None
    status: RateStatus


class _Sums:
    """Per-group count, sum and sum of squares of one input on one side (NaN left out)."""

    def __init__(self, n: FloatArray, s1: FloatArray, s2: FloatArray) -> None:
        self.n, self.s1, self.s2 = n, s1, s2

    @classmethod
    def of(cls, codes: np.ndarray, x: FloatArray, size: int) -> _Sums:
        ok = ~np.isnan(x)
        c, v = codes[ok], x[ok]
        return cls(
            np.bincount(c, minlength=size).astype(np.float64),
            np.asarray(np.bincount(c, weights=v, minlength=size), dtype=np.float64),
            np.asarray(np.bincount(c, weights=v * v, minlength=size), dtype=np.float64),
        )

    def rest(self, keep: np.ndarray) -> _Sums:
        """Per group, the sums of the other groups of the column among ``keep``."""

        def other(a: FloatArray) -> FloatArray:
            return np.asarray(a[keep].sum() - np.where(keep, a, 0.0), dtype=np.float64)

        return _Sums(other(self.n), other(self.s1), other(self.s2))

    def mean(self) -> FloatArray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(self.s1 / self.n, dtype=np.float64)

    def var_log_mean(self) -> FloatArray:
        """Variance of log(mean): sample variance / (n · mean²), NaN where undefined."""
        with np.errstate(divide="ignore", invalid="ignore"):
            var = np.maximum(self.s2 - self.s1**2 / self.n, 0.0) / (self.n - 1)
            return np.asarray(var * self.n / self.s1**2, dtype=np.float64)

    def dispersion(self) -> FloatArray:
        with np.errstate(divide="ignore", invalid="ignore"):
            var = np.maximum(self.s2 - self.s1**2 / self.n, 0.0) / (self.n - 1)
            return np.asarray(var / (self.s1 / self.n), dtype=np.float64)

    def enough(self, s: RateSettings) -> np.ndarray:
        return (self.n >= s.min_group_size) & (self.s1 >= s.min_events)


def _interval(log_ratio: FloatArray, var: FloatArray, z: float) -> tuple[FloatArray, ...]:
    half = z * np.sqrt(var)
    return np.exp(log_ratio), np.exp(log_ratio - half), np.exp(log_ratio + half)


def _outside(lower: float, upper: float, band: float) -> bool:
    return lower > band or upper < 1.0 / band


def _num(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def _relative(
    ref: _Sums,
    cur: _Sums,
    log_r: FloatArray,
    var_r: FloatArray,
    enough: np.ndarray,
    s: RateSettings,
) -> tuple[FloatArray, FloatArray, FloatArray, np.ndarray]:
    """Each group's ratio against the rest of its column's, with the groups that moved left
    out of the others' rest: the group furthest outside the band is set aside, the rest is
    recomputed without it, and so on until no other group is outside. Without that a region
    whose rate rose by a third makes every other region's relative ratio fall (its rest holds
    the risen region): with four regions one ×1.36 region of 37 % of the persons puts the
    others near 0.86, outside the band once the population is large."""
    z = float(special.ndtri(0.5 + s.confidence / 2))
    moved = np.zeros(len(log_r), dtype=bool)
    band = np.log(s.band)
    while True:
        rr, rc = ref.rest(~moved), cur.rest(~moved)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_rest = np.log(rc.mean()) - np.log(rr.mean())
        rel, lo, hi = _interval(log_r - log_rest, var_r + rr.var_log_mean() + rc.var_log_mean(), z)
        judged = enough & rr.enough(s) & rc.enough(s)
        with np.errstate(invalid="ignore"):
            beyond = np.maximum(np.log(lo) - band, -band - np.log(hi))
        beyond = np.where(judged & ~moved & np.isfinite(beyond), beyond, -np.inf)
        if not (beyond > 0).any():
            return rel, lo, hi, judged
        moved[int(np.argmax(beyond))] = True


def rate_drift(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    settings: RateSettings,
    group_columns: Sequence[str] = (),
) -> list[RateDrift]:
    """The rate ratios of every configured input present in both frames, overall and per group
    of each of ``group_columns`` (restricted to ``settings.group_columns`` when set)."""
    inputs = [c for c in settings.inputs if c in reference.columns and c in current.columns]
    wanted = settings.group_columns
    columns = [
        c
        for c in group_columns
        if (wanted is None or c in wanted) and c in reference.columns and c in current.columns
    ]
    if not inputs:
        return []
    z = float(special.ndtri(0.5 + settings.confidence / 2))
    grps = groupings([reference, current], columns)
    out: list[RateDrift] = []
    for name in inputs:
        x_ref, x_cur = (
            f.get_column(name).cast(pl.Float64).fill_null(np.nan).to_numpy()
            for f in (reference, current)
        )
        for g in grps:
            ref = _Sums.of(g.codes[0], x_ref, g.size)
            cur = _Sums.of(g.codes[1], x_cur, g.size)
            with np.errstate(divide="ignore", invalid="ignore"):
                log_r = np.log(cur.mean()) - np.log(ref.mean())
            var_r = ref.var_log_mean() + cur.var_log_mean()
            ratio, r_lo, r_hi = _interval(log_r, var_r, z)
            enough = ref.enough(settings) & cur.enough(settings)
            overall = g.column == ALL
            if overall:  # no rest to compare with: the raw ratio is judged
                rel = rel_lo = rel_hi = np.full(g.size, np.nan)
                judged, lo, hi, band = enough, r_lo, r_hi, settings.overall_band
            else:
                rel, rel_lo, rel_hi, judged = _relative(ref, cur, log_r, var_r, enough, settings)
                lo, hi, band = rel_lo, rel_hi, settings.band
            disp = cur.dispersion()
            for i, label in enumerate(g.labels):
                status: RateStatus = (
                    "insufficient_evidence"
                    if not judged[i]
                    else "alert"
                    if _outside(lo[i], hi[i], band)
                    else "ok"
                )
                out.append(
                    RateDrift(
                        input=name,
                        group_column=g.column,
                        group=label,
                        n_reference=int(ref.n[i]),
                        n_current=int(cur.n[i]),
                        events_reference=float(ref.s1[i]),
                        events_current=float(cur.s1[i]),
                        mean_reference=_num(ref.mean()[i]),
                        mean_current=_num(cur.mean()[i]),
                        dispersion=_num(disp[i]),
                        ratio=_num(ratio[i]),
                        ratio_lower=_num(r_lo[i]),
                        ratio_upper=_num(r_hi[i]),
                        relative=_num(rel[i]),
                        relative_lower=_num(rel_lo[i]),
                        relative_upper=_num(rel_hi[i]),
                        status=status,
                    )
                )
    return out
