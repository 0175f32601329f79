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
from features.simulator import keyed
from features.simulator.admin import AdminOffences
from features.simulator.careers import Careers
from features.simulator.cases import Offsets
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


ADMIN_FINE, CRIMINAL_FINE, DAMAGES, ALIMONY, OTHER = (
    OBLIGATION_KIND.index(k) for k in ("admin_fine", "criminal_fine", "damages", "alimony", "other")
)


def _poisson(u: np.ndarray, rate: np.ndarray, most: int = 8) -> np.ndarray:
    """Poisson counts by inversion of uniforms `u` (small rates)."""
    count = np.zeros(u.shape, dtype=np.int64)
    term = np.exp(-rate)
    cdf = term.copy()
    for c in range(1, most + 1):
        more = u > cdf
        count += more
        term = term * rate / c
        cdf = cdf + term
    return count


def _episodes(
    seed: int, stream: int, pop: Population, rate: np.ndarray, first: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Episodes per (person, year of simulation): person index, key, imposed day."""
    year = np.arange(rate.shape[1])
    counts = _poisson(keyed.uniform(seed, stream, pop.counter[:, None], year[None, :]), rate)
    person, y = np.nonzero(counts)
    reps = counts[person, y]
    person, y = np.repeat(person, reps), np.repeat(y, reps)
    k = np.arange(len(person)) - np.repeat(np.cumsum(reps) - reps, reps)
    key = y * 100 + k
    day = keyed.uniform(seed, stream + 1, pop.counter[person], key)
    return person, key, first + 365 * y + (day * 365).astype(np.int64)


def _write_off(full_day: np.ndarray, due: np.ndarray, years: float) -> np.ndarray:
    """The day each obligation is closed once debts unpaid ``years`` after their due date are
    written off (a limitation period for enforcement).

    Without it an unpaid debt stays overdue for ever, so the stock of old debts ages with the
    calendar since the simulation start: `obligations_oldest_overdue_days` rises every quarter
    (median 1,843 days at 2021-12-31, 2,393 at 2024-12-31 on 60k persons) and a drift monitor
    rightly alarms on a world with no steady state (bench_monitoring.md section 6). With it
    the age is bounded and the distribution is stationary once the simulation has run longer
    than the period. The contract has no written-off status (``paid_at`` is set iff
    ``paid_amount`` equals ``amount``), so the register closes the balance: the obligation
    reads as settled on the write-off day, which is how every feature definition reads a
    closed debt; the share paid on time is untouched (the write-off is long after the due
    date). No random numbers are drawn, so everything else is unchanged."""
    write_off = due + round(years * 365.25)
    return np.where(full_day > write_off, write_off, full_day)


def build_obligations(
    seed: int,
    pop: Population,
    careers: Careers,
    paths: StatusPaths,
    grid: MonthGrid,
    cfg: SimulatorConfig,
    offsets: Offsets,
) -> Obligations:
    """All obligations imposed by the end of the simulation, in (imposed, source) order.

    Random numbers are keyed by each obligation's source (admin record, case, or the
    person-year of an episode), so an obligation is the same however long the simulation
    runs, and the order puts later ones after earlier ones.
    """
    oc = cfg.obligations
    first, last = grid.first_day, grid.last_day
    adm: AdminOffences = careers.admin
    off = careers.offences
    fined = np.flatnonzero(~np.isnan(adm.fine))
    case_key = offsets.offence + np.arange(len(off.person), dtype=np.int64)
    convicted = off.detected & (off.reg_day <= last) & (off.kind == CONVICTED)
    crim_fine = np.flatnonzero(convicted & (off.non_custodial == NC_FINE))
    harm = np.isin(
        off.category, [CRIME_CATEGORY.index("violent"), CRIME_CATEGORY.index("property")]
    )
    damages = np.flatnonzero(convicted & harm & (keyed.uniform(seed, 41, case_key) < 0.35))

    years = (last - first) // 365 + 1
    mid = first + 365 * np.arange(years) + 182
    age = (mid[None, :] - pop.birth_day[:, None]) / 365.25
    alimony_rate = np.where(
        pop.male[:, None] & (age >= 22) & (age <= 55),
        oc.alimony_yearly * np.sqrt(pop.u)[:, None],
        0.0,
    )
    other_rate = np.where(age >= 20, oc.other_yearly, 0.0)
    ali_person, ali_key, ali_day = _episodes(seed, 42, pop, alimony_rate, first)
    oth_person, oth_key, oth_day = _episodes(seed, 44, pop, other_rate, first)

    def full(kind: int, n: int) -> np.ndarray:
        return np.full(n, kind, dtype=np.int64)

    kind = np.concatenate(
        [
            full(ADMIN_FINE, len(fined)),
            full(CRIMINAL_FINE, len(crim_fine)),
            full(DAMAGES, len(damages)),
            full(ALIMONY, len(ali_person)),
            full(OTHER, len(oth_person)),
        ]
    )
    person = np.concatenate(
        [adm.person[fined], off.person[crim_fine], off.person[damages], ali_person, oth_person]
    )
    source = np.concatenate(
        [
            offsets.admin + fined,
            case_key[crim_fine],
            case_key[damages],
            pop.counter[ali_person],
            pop.counter[oth_person],
        ]
    )
    sub = np.concatenate(
        [np.zeros(len(fined) + len(crim_fine) + len(damages), dtype=np.int64), ali_key, oth_key]
    )
    imposed = np.concatenate(
        [
            adm.reg_us[fined] // DAY_US,
            off.final_day[crim_fine],
            off.final_day[damages],
            ali_day,
            oth_day,
        ]
    )
    keep = imposed <= last
    order = np.lexsort((sub[keep], source[keep], kind[keep], imposed[keep]))
    pick = np.flatnonzero(keep)[order]
    kind, person, source, sub, imposed = (
        kind[pick],
        person[pick],
        source[pick],
        sub[pick],
        imposed[pick],
    )
    key = (kind, source, sub)

    def u(stream: int) -> np.ndarray:
        return keyed.uniform(seed, stream, *key)

    z = keyed.normal(seed, 60, *key)
    base = 80_000 * np.exp(0.8 * z)  # other debts
    m = kind == ADMIN_FINE
    base[m] = adm.fine[source[m] - offsets.admin]
    m = kind == CRIMINAL_FINE
    base[m] = MCI_KZT * (50 + np.floor(u(61)[m] * 950))
    m = kind == DAMAGES
    base[m] = 300_000 * np.exp(0.9 * z[m])
    m = kind == ALIMONY
    base[m] = 250_000 * np.exp(0.6 * z[m])
    amount = _money(base)
    due = imposed + np.array([60, 30, 90, 30, 90])[kind]

    status = paths.at_days(person, np.clip(imposed, first, last), grid)
    shift = np.array([oc.pay_status.get(s, 0.0) for s in STATUS] + [0.0])[status]
    logit = oc.pay_intercept - oc.pay_propensity * pop.log_u[person] + shift
    on_time = u(51) < 1.0 / (1.0 + np.exp(-logit))
    route = u(52)
    span = np.maximum(due - imposed, 1)
    pay_on_time = imposed + (u(53) * (span + 1)).astype(np.int64)
    pay_late = due + 1 + (-150.0 * np.log1p(-u(54))).astype(np.int64)
    partial_day = imposed + 10 + (u(55) * 200).astype(np.int64)
    partial_then_full = partial_day + 1 + (-300.0 * np.log1p(-u(56))).astype(np.int64)
    late = ~on_time & (route < 0.45)
    partial = ~on_time & (route >= 0.45) & (route < 0.8)
    full_day = np.where(on_time, pay_on_time, np.where(late, pay_late, NEVER))
    full_day = np.where(partial & (u(57) < 0.3), partial_then_full, full_day)
    if oc.write_off_years is not None:
        full_day = _write_off(full_day, due, oc.write_off_years)
    partial_amount = np.round(amount * (0.1 + 0.8 * u(58)), 2)
    partial_amount = np.minimum(partial_amount, np.round(amount - 0.01, 2))
    lag = (-5.0 * np.log1p(-u(59))).astype(np.int64)
    recorded = (imposed + lag) * DAY_US + (u(62) * 86_400).astype(np.int64) * SECOND_US
    annul = u(63) < oc.annul_share
    annul_day = np.where(annul, imposed + 30 + (u(64) * 700).astype(np.int64), NEVER)
    return Obligations(
        person,
        kind,
        imposed,
        due,
        amount,
        np.where(partial, partial_amount, 0.0),
        np.where(partial, partial_day, NEVER),
        full_day,
        recorded,
        annul_day,
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
