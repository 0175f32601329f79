"""What follows a registration: outcome and its dates, sentence, custody and release.

Everything about a case is drawn when the offence is drawn (with a fixed number of random
numbers per offence, so that measurement bias cannot shift anyone else's draws) but takes
effect only from the registration day: custody enters a person's state on the day the case
is registered. p_true therefore conditions on custody from cases registered by as_of only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from features.contract.schema import GRAVITY
from features.simulator.config import SimulatorConfig
from features.simulator.hazard import NO_DAY
from features.simulator.population import Population
from features.simulator.timebase import NEVER

MONTH_DAYS = 30.4375
EXONERATED, TERMINATED, ACQUITTED, CONVICTED = range(4)
NC_FINE, NC_PROBATION, NC_RESTRICTED = range(3)
N_UNIFORM = 6  # uniforms used per offence by `decide`
N_NORMAL = 4  # standard normals used per offence by `decide`


@dataclass
class Decision:
    kind: np.ndarray  # EXONERATED .. CONVICTED
    final_day: np.ndarray  # termination or verdict day
    referral_day: np.ndarray  # NEVER unless the case goes to court
    prison: np.ndarray  # bool: imprisonment
    prison_months: np.ndarray
    served_days: np.ndarray  # actual days in custody (parole shortens)
    extra_days: np.ndarray  # supervised_until - release, -1 for none
    parole: np.ndarray
    non_custodial: np.ndarray  # NC_* for convicted without prison, -1 otherwise
    nc_months: np.ndarray


def _lognormal(median: float | np.ndarray, sigma: float, z: np.ndarray) -> np.ndarray:
    return np.asarray(median) * np.exp(sigma * z)


def decide(
    reg_day: np.ndarray,
    gravity: np.ndarray,
    u: np.ndarray,
    z: np.ndarray,
    cfg: SimulatorConfig,
) -> Decision:
    """Outcome, timing and sentence of registered cases; `u`, `z`: (k, N_UNIFORM/N_NORMAL)."""
    jc = cfg.justice
    k = len(reg_day)
    p = np.cumsum([jc.p_terminated_exonerating, jc.p_terminated_other, jc.p_acquitted])
    kind = np.searchsorted(p, u[:, 0], side="right").astype(np.int64)
    terminate = reg_day + 1 + _lognormal(jc.termination_median_days, 0.8, z[:, 0]).astype(np.int64)
    referral = reg_day + 1 + _lognormal(jc.referral_median_days, 0.7, z[:, 1]).astype(np.int64)
    verdict = referral + 1 + _lognormal(jc.verdict_median_days, 0.6, z[:, 2]).astype(np.int64)
    court = kind >= ACQUITTED
    final_day = np.where(court, verdict, terminate)
    referral_day = np.where(court, referral, NEVER)

    convicted = kind == CONVICTED
    p_prison = np.array([jc.imprisonment.get(g, 0.0) for g in GRAVITY])[gravity]
    prison = convicted & (u[:, 1] < p_prison)
    median = np.array([jc.prison_months_median.get(g, 12.0) for g in GRAVITY])[gravity]
    months = np.maximum(1, np.round(_lognormal(median, 0.5, z[:, 3]))).astype(np.int64)
    parole = prison & (u[:, 2] < jc.parole_share)
    full_days = np.round(months * MONTH_DAYS).astype(np.int64)
    served = np.where(parole, np.round(full_days * 2 / 3), full_days).astype(np.int64)
    admin_supervision = u[:, 3] < 0.3
    extra = np.where(parole, full_days - served, np.where(admin_supervision, 365, -1))

    shares = np.cumsum([jc.fine_share_non_custodial, jc.probation_share_non_custodial])
    nc = np.searchsorted(shares, u[:, 4], side="right").astype(np.int64)
    non_custodial = np.where(convicted & ~prison, np.minimum(nc, NC_RESTRICTED), -1)
    nc_months = 6 + (u[:, 5] * 31).astype(np.int64)
    zeros = np.zeros(k, dtype=np.int64)
    return Decision(
        kind,
        final_day,
        referral_day,
        prison,
        np.where(prison, months, zeros),
        np.where(prison, served, zeros),
        np.where(prison, extra, -1),
        parole,
        non_custodial,
        nc_months,
    )


@dataclass
class CustodyView:
    """Custody as some moment knows it: the current slot [cs, ce) and the previous release."""

    cs: np.ndarray
    ce: np.ndarray
    prev_release: np.ndarray

    def in_custody(self, person: np.ndarray, days: np.ndarray) -> np.ndarray:
        return np.asarray((self.cs[person] <= days) & (days < self.ce[person]))

    def last_release(self, before: int) -> np.ndarray:
        """The latest release day earlier than `before` (NO_DAY when none)."""
        released = (self.ce > NO_DAY) & (self.ce < before)
        return np.where(released, self.ce, self.prev_release)


@dataclass
class Custody:
    """One custody slot per person; a sentence registered while a slot has not ended is
    served consecutively (the slot is extended), otherwise it opens a new slot."""

    view: CustodyView
    months: np.ndarray
    extra: np.ndarray
    parole: np.ndarray
    events: dict[str, np.ndarray] = field(default_factory=dict)
    released: list[dict[str, np.ndarray]] = field(default_factory=list)

    @classmethod
    def initial(
        cls, rng: np.random.Generator, pop: Population, cfg: SimulatorConfig, start_day: int
    ) -> Custody:
        n = pop.n
        age = (start_day - pop.birth_day) / 365.25
        p = np.where(
            (age >= 18) & (age < 65),
            np.minimum(0.1, cfg.justice.initial_custody_scale * pop.u),
            0.0,
        )
        inside = rng.random(n) < p
        cs = start_day - rng.integers(30, 3 * 365, n)
        ce = start_day + rng.integers(1, 5 * 365, n)
        parole = rng.random(n) < cfg.justice.parole_share
        served = ce - cs
        full = np.where(parole, served * 3 // 2, served)
        months = np.maximum(1, np.round(full / MONTH_DAYS)).astype(np.int64)
        extra = np.where(parole, full - served, np.where(rng.random(n) < 0.3, 365, -1))
        none = np.full(n, NO_DAY, dtype=np.int64)
        view = CustodyView(np.where(inside, cs, none), np.where(inside, ce, none), none.copy())
        zero = np.zeros(n, dtype=np.int64)
        return cls(
            view,
            np.where(inside, months, zero),
            np.where(inside, extra, -1),
            inside & parole,
        )

    def add_events(self, person: np.ndarray, reg_day: np.ndarray, d: Decision) -> None:
        """Queue the custody of registered cases sentenced to prison (effective at reg_day)."""
        sel = d.prison
        new = {
            "person": person[sel],
            "reg_day": reg_day[sel],
            "start": d.final_day[sel],
            "served": d.served_days[sel],
            "months": d.prison_months[sel],
            "extra": d.extra_days[sel],
            "parole": d.parole[sel],
        }
        if not self.events:
            self.events = new
        else:
            self.events = {k: np.concatenate([self.events[k], new[k]]) for k in new}

    def apply_through(self, last_day: int) -> None:
        """Apply queued events registered on or before `last_day`, in registration order."""
        if not self.events or len(self.events["person"]) == 0:
            return
        due = self.events["reg_day"] <= last_day
        if not due.any():
            return
        batch = {k: v[due] for k, v in self.events.items()}
        self.events = {k: v[~due] for k, v in self.events.items()}
        order = np.lexsort((batch["reg_day"], batch["person"]))
        batch = {k: v[order] for k, v in batch.items()}
        person = batch["person"]
        first = np.ones(len(person), dtype=bool)
        first[1:] = person[1:] != person[:-1]
        rank = np.arange(len(person)) - np.maximum.accumulate(
            np.where(first, np.arange(len(person)), 0)
        )
        for r in range(int(rank.max()) + 1):
            self._apply({k: v[rank == r] for k, v in batch.items()})

    def _apply(self, e: dict[str, np.ndarray]) -> None:
        v = self.view
        p = e["person"]
        ongoing = v.ce[p] > e["reg_day"]
        # Extend: served consecutively from the later of the old end and the verdict.
        ext = p[ongoing]
        v.ce[ext] = np.maximum(v.ce[ext], e["start"][ongoing]) + e["served"][ongoing]
        self.months[ext] += e["months"][ongoing]
        self.parole[ext] |= e["parole"][ongoing]
        self.extra[ext] = np.maximum(self.extra[ext], e["extra"][ongoing])
        # Replace: the old slot (if any) ended before this registration; record its release.
        rep = p[~ongoing]
        had = v.ce[rep] > NO_DAY
        self._release(rep[had])
        v.prev_release[rep[had]] = v.ce[rep[had]]
        v.cs[rep] = e["start"][~ongoing]
        v.ce[rep] = e["start"][~ongoing] + e["served"][~ongoing]
        self.months[rep] = e["months"][~ongoing]
        self.parole[rep] = e["parole"][~ongoing]
        self.extra[rep] = e["extra"][~ongoing]

    def _release(self, person: np.ndarray) -> None:
        if len(person):
            self.released.append(
                {
                    "person": person.copy(),
                    "released_at": self.view.ce[person].copy(),
                    "months": self.months[person].copy(),
                    "extra": self.extra[person].copy(),
                    "parole": self.parole[person].copy(),
                }
            )

    def snapshot(self) -> CustodyView:
        v = self.view
        return CustodyView(v.cs.copy(), v.ce.copy(), v.prev_release.copy())

    def finish(self, last_day: int) -> dict[str, np.ndarray]:
        """All releases that happened by `last_day` (slots still running are not released)."""
        ended = np.flatnonzero((self.view.ce > NO_DAY) & (self.view.ce <= last_day))
        self._release(ended)
        keys = ("person", "released_at", "months", "extra", "parole")
        if not self.released:
            return {k: np.zeros(0, dtype=bool if k == "parole" else np.int64) for k in keys}
        return {k: np.concatenate([r[k] for r in self.released]) for k in keys}
