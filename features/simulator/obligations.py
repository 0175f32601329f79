"""Financial obligations (fines, alimony, damages, other debts) and how they are paid.

Paying on time is a logistic function of propensity and of the social status at imposition,
so overdue and unpaid obligations *correlate* with risk (they share its causes) without
causing it: a model may use them; an audit may ask whether it should.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from features.contract.schema import CRIME_CATEGORY, OBLIGATION_KIND, STATUS, TABLES
from features.simulator.admin import AdminOffences
from features.simulator.careers import Careers
from features.simulator.codes import MCI_KZT
from features.simulator.config import SimulatorConfig
from features.simulator.ids import make_ids
from features.simulator.justice import CONVICTED, NC_FINE
from features.simulator.population import Population
from features.simulator.status import StatusPaths
from features.simulator.timebase import DAY_US, NEVER, SECOND_US, MonthGrid, date_series, ts_series


@dataclass
class Obligations:
    person: np.ndarray
    kind: np.ndarray
    imposed: np.ndarray
    due: np.ndarray
    amount: np.ndarray
    partial_amount: np.ndarray
    partial_day: np.ndarray  # NEVER: no partial payment
    full_day: np.ndarray  # NEVER: never paid in full
    recorded_us: np.ndarray
    annul_day: np.ndarray  # NEVER: not annulled

    @property
    def n(self) -> int:
        return len(self.person)


def _money(x: np.ndarray) -> np.ndarray:
    return np.asarray(np.round(np.maximum(x, 100.0), 2))


def build_obligations(
    rng: np.random.Generator,
    pop: Population,
    careers: Careers,
    paths: StatusPaths,
    grid: MonthGrid,
    cfg: SimulatorConfig,
) -> Obligations:
    oc = cfg.obligations
    first, last = grid.first_day, grid.last_day
    adm: AdminOffences = careers.admin
    fined = np.flatnonzero(~np.isnan(adm.fine))
    off = careers.offences
    convicted = off.detected & (off.reg_day <= last) & (off.kind == CONVICTED)
    crim_fine = np.flatnonzero(convicted & (off.non_custodial == NC_FINE))
    harm = np.isin(
        off.category, [CRIME_CATEGORY.index("violent"), CRIME_CATEGORY.index("property")]
    )
    damages = np.flatnonzero(convicted & harm & (rng.random(len(off.person)) < 0.35))

    # Alimony: men aged 22-55 during the period; other debts: any adult.
    years = (last - first) / 365.25
    age_mid = (first + last) / 2 / 365.25 - pop.birth_day / 365.25
    eligible_m = pop.male & (age_mid >= 22) & (age_mid <= 55)
    n_alimony = rng.poisson(oc.alimony_yearly * years * eligible_m * np.sqrt(pop.u))
    n_other = rng.poisson(oc.other_yearly * years * (age_mid >= 20))
    ali_person = np.repeat(np.arange(pop.n), n_alimony)
    oth_person = np.repeat(np.arange(pop.n), n_other)

    person = np.concatenate(
        [adm.person[fined], off.person[crim_fine], off.person[damages], ali_person, oth_person]
    )
    kind = np.concatenate(
        [
            np.full(len(fined), OBLIGATION_KIND.index("admin_fine")),
            np.full(len(crim_fine), OBLIGATION_KIND.index("criminal_fine")),
            np.full(len(damages), OBLIGATION_KIND.index("damages")),
            np.full(len(ali_person), OBLIGATION_KIND.index("alimony")),
            np.full(len(oth_person), OBLIGATION_KIND.index("other")),
        ]
    )
    k_ali, k_oth = len(ali_person), len(oth_person)
    imposed = np.concatenate(
        [
            adm.reg_us[fined] // DAY_US,
            off.final_day[crim_fine],
            off.final_day[damages],
            first + (rng.random(k_ali) * (last - first)).astype(np.int64),
            first + (rng.random(k_oth) * (last - first)).astype(np.int64),
        ]
    )
    amount = _money(
        np.concatenate(
            [
                adm.fine[fined],
                MCI_KZT * rng.integers(50, 1000, len(crim_fine)),
                300_000 * np.exp(0.9 * rng.standard_normal(len(damages))),
                250_000 * np.exp(0.6 * rng.standard_normal(k_ali)),
                80_000 * np.exp(0.8 * rng.standard_normal(k_oth)),
            ]
        )
    )
    due_days = np.array([60, 30, 90, 30, 90])[kind]
    due = imposed + due_days
    n = len(person)

    status = paths.at_days(person, np.clip(imposed, first, last), grid)
    shift = np.array([oc.pay_status.get(s, 0.0) for s in STATUS] + [0.0])[status]
    logit = oc.pay_intercept - oc.pay_propensity * pop.log_u[person] + shift
    on_time = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    route = rng.random(n)
    span = np.maximum(due - imposed, 1)
    pay_on_time = imposed + (rng.random(n) * (span + 1)).astype(np.int64)
    pay_late = due + 1 + rng.exponential(150.0, n).astype(np.int64)
    partial_day = imposed + 10 + (rng.random(n) * 200).astype(np.int64)
    partial_then_full = partial_day + 1 + rng.exponential(300.0, n).astype(np.int64)
    late = ~on_time & (route < 0.45)
    partial = ~on_time & (route >= 0.45) & (route < 0.8)
    full_day = np.where(on_time, pay_on_time, np.where(late, pay_late, NEVER))
    full_day = np.where(partial & (rng.random(n) < 0.3), partial_then_full, full_day)
    partial_amount = np.round(amount * (0.1 + 0.8 * rng.random(n)), 2)
    partial_amount = np.minimum(partial_amount, np.round(amount - 0.01, 2))
    lag = rng.exponential(5.0, n).astype(np.int64)
    recorded = (imposed + lag) * DAY_US + rng.integers(0, 86_400, n) * SECOND_US
    annul = rng.random(n) < oc.annul_share
    annul_day = np.where(annul, imposed + 30 + (rng.random(n) * 700).astype(np.int64), NEVER)
    keep = imposed <= last
    return Obligations(
        person[keep],
        kind[keep],
        imposed[keep],
        due[keep],
        amount[keep],
        np.where(partial, partial_amount, 0.0)[keep],
        np.where(partial, partial_day, NEVER)[keep],
        full_day[keep],
        recorded[keep],
        annul_day[keep],
    )


def obligations_frame(
    ob: Obligations, pop: Population, first_counter: int, extracted_us: int, extraction_day: int
) -> pl.DataFrame:
    """Obligations at extraction: payments made by then, annulled ones left out."""
    idx = np.flatnonzero((ob.recorded_us <= extracted_us) & (ob.annul_day > extraction_day))
    full = ob.full_day[idx] <= extraction_day
    part = ob.partial_day[idx] <= extraction_day
    amount = ob.amount[idx]
    paid = np.where(full, amount, np.where(part, ob.partial_amount[idx], 0.0))
    frame = pl.DataFrame(
        [
            make_ids("OB", first_counter + idx).alias("obligation_id"),
            pop.person_id.gather(ob.person[idx]).alias("person_id"),
            pl.Series("kind", np.asarray(OBLIGATION_KIND, dtype=object)[ob.kind[idx]], pl.String),
            date_series("imposed_at", ob.imposed[idx]),
            date_series("due_at", ob.due[idx]),
            pl.Series("amount", amount, dtype=pl.Float64),
            pl.Series("paid_amount", paid, dtype=pl.Float64),
            date_series("paid_at", np.where(full, ob.full_day[idx], 0), full),
            ts_series("recorded_at", ob.recorded_us[idx]),
        ]
    )
    return frame.select(TABLES["obligations"].column_names)
