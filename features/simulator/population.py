"""Persons: demographics, home district, the protected ethnicity attribute and the latent
propensity u that scales every person-level hazard."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from features.contract.schema import EDUCATION, SETTLEMENT, SEX, TABLES
from features.simulator.codes import DISTRICT_CODES, DISTRICTS, REGION_CODES
from features.simulator.config import SimulatorConfig
from features.simulator.ids import make_ids
from features.simulator.timebase import NEVER, civil, date_series


def ethnicity_codes(cfg: SimulatorConfig) -> tuple[str, ...]:
    return tuple(sorted({e for shares in cfg.population.ethnicity_shares.values() for e in shares}))


@dataclass
class Population:
    """One chunk of persons; arrays are aligned, index i is the i-th person of the chunk."""

    counter: np.ndarray  # global person counter (id source)
    person_id: pl.Series
    birth_day: np.ndarray
    by: np.ndarray
    bm: np.ndarray
    bd: np.ndarray
    male: np.ndarray
    region: np.ndarray  # index into REGION_CODES
    district: np.ndarray  # index into DISTRICTS
    urban: np.ndarray
    education: np.ndarray  # index into EDUCATION
    ethnicity: np.ndarray  # index into ethnicity_codes(cfg)
    log_u: np.ndarray
    bias: np.ndarray  # detection multiplier for low-gravity offences (measurement bias)
    missing: dict[str, np.ndarray]
    education_fix_day: np.ndarray  # education shown as 'unknown' until this day (correction)

    @property
    def n(self) -> int:
        return len(self.counter)

    @property
    def u(self) -> np.ndarray:
        return np.asarray(np.exp(self.log_u))


def _choice(rng: np.random.Generator, n: int, weights: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights / weights.sum())
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(cdf) - 1)


def draw_population(
    rng: np.random.Generator,
    cfg: SimulatorConfig,
    first_counter: int,
    n: int,
    extraction_day: int,
    start_day: int,
) -> Population:
    pc = cfg.population
    ages = np.arange(pc.min_age, pc.max_age + 1)
    age_w = np.exp(-pc.age_decline * (ages - pc.min_age))
    age = ages[_choice(rng, n, age_w)]
    birth_day = extraction_day - np.floor(age * 365.25).astype(np.int64) - rng.integers(0, 365, n)
    by, bm, bd = civil(birth_day)
    male = rng.random(n) < pc.male_share

    region_w = np.array([pc.region_shares.get(r, 0.0) for r in REGION_CODES])
    region = _choice(rng, n, region_w)
    district = np.empty(n, dtype=np.int64)
    for ri in range(len(REGION_CODES)):
        members = [i for i, d in enumerate(DISTRICTS) if d.region == ri]
        sel = np.flatnonzero(region == ri)
        w = np.array([DISTRICTS[i].share for i in members])
        district[sel] = np.asarray(members)[_choice(rng, len(sel), w)]
    urban = np.array([d.urban for d in DISTRICTS])[district]

    edu_w = np.array([pc.education_shares.get(e, 0.0) for e in EDUCATION])
    education = _choice(rng, n, edu_w)
    young = age < 18
    education[young] = np.where(
        rng.random(int(young.sum())) < 0.7, EDUCATION.index("secondary"), EDUCATION.index("primary")
    )

    eth_codes = ethnicity_codes(cfg)
    ethnicity = np.empty(n, dtype=np.int64)
    for ri, rcode in enumerate(REGION_CODES):
        shares = pc.ethnicity_shares.get(rcode, {})
        w = np.array([shares.get(e, 0.0) for e in eth_codes])
        sel = np.flatnonzero(region == ri)
        ethnicity[sel] = _choice(rng, len(sel), w if w.sum() > 0 else np.ones(len(eth_codes)))

    pp = pc.propensity
    edu_eff = np.array([pp.education.get(e, 0.0) for e in EDUCATION])
    reg_eff = np.array([pp.region.get(r, 0.0) for r in REGION_CODES])
    # Ethnicity is deliberately absent: it has no effect on offending.
    log_u = (
        pp.male * male
        + pp.rural * ~urban
        + edu_eff[education]
        + reg_eff[region]
        + pp.sigma * np.clip(rng.standard_normal(n), -pp.z_clip, pp.z_clip)
        + pp.persistent_shift * (rng.random(n) < pp.persistent_share)
    )

    bias = np.ones(n)
    for b in cfg.crime.detection_bias:
        if b.region in REGION_CODES and b.ethnicity in eth_codes:
            hit = (region == REGION_CODES.index(b.region)) & (
                ethnicity == eth_codes.index(b.ethnicity)
            )
            bias[hit] *= b.factor

    missing = {col: rng.random(n) < share for col, share in pc.missing.items()}
    fix = rng.random(n) < cfg.corrections.education_fix_share
    fix_day = np.where(
        fix,
        start_day + (rng.random(n) * (extraction_day + 400 - start_day)).astype(np.int64),
        NEVER,
    )
    counter = np.arange(first_counter, first_counter + n, dtype=np.int64)
    return Population(
        counter=counter,
        person_id=make_ids("P", counter),
        birth_day=birth_day,
        by=by,
        bm=bm,
        bd=bd,
        male=male,
        region=region,
        district=district,
        urban=urban,
        education=education,
        ethnicity=ethnicity,
        log_u=log_u,
        bias=bias,
        missing=missing,
        education_fix_day=fix_day,
    )


def _codes(values: tuple[str, ...], index: np.ndarray, name: str) -> pl.Series:
    return pl.Series(name, np.asarray(values, dtype=object)[index], dtype=pl.String)


def _masked(s: pl.Series, missing: np.ndarray | None) -> pl.Series:
    if missing is None or not missing.any():
        return s
    return pl.select(pl.when(pl.Series(missing)).then(None).otherwise(s).alias(s.name)).to_series()


def persons_frame(pop: Population, cfg: SimulatorConfig, extraction_day: int) -> pl.DataFrame:
    """The persons table as the register shows it at `extraction_day`."""
    m = pop.missing
    education = pop.education.copy()
    education[pop.education_fix_day > extraction_day] = EDUCATION.index("unknown")
    frame = pl.DataFrame(
        [
            pop.person_id.alias("person_id"),
            date_series("birth_date", pop.birth_day),
            _codes(SEX, np.where(pop.male, 0, 1), "sex"),
            _codes(REGION_CODES, pop.region, "region"),
            _masked(_codes(DISTRICT_CODES, pop.district, "district"), m.get("district")),
            _masked(
                _codes(SETTLEMENT, np.where(pop.urban, 0, 1), "settlement"), m.get("settlement")
            ),
            _masked(_codes(EDUCATION, education, "education"), m.get("education")),
            _masked(_codes(ethnicity_codes(cfg), pop.ethnicity, "ethnicity"), m.get("ethnicity")),
        ]
    )
    return frame.select(TABLES["persons"].column_names)
