"""Register rows as known at an extraction: criminal cases, admin offences, releases.

Each function takes the latent events of a chunk and an extraction time and returns the
contract table as the register shows it then: rows known by then, mutable columns in their
state then (outcome, category before its fix), rows deleted by then left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from features.contract.schema import (
    ADMIN_CATEGORY,
    CRIME_CATEGORY,
    DETECTED_BY,
    GRAVITY,
    OUTCOME,
    SANCTION,
    SENTENCE,
    TABLES,
)
from features.simulator import keyed
from features.simulator.admin import AdminOffences
from features.simulator.careers import Careers
from features.simulator.codes import (
    ADMIN_ARTICLE_CODES,
    ARTICLE_CODES,
    ARTICLE_GRAVITY,
    DISTRICT_CODES,
    REGION_CODES,
)
from features.simulator.crimes import Offences
from features.simulator.ids import CHUNK_SPACE, DOUBLE_ENTRY, make_ids
from features.simulator.justice import (
    ACQUITTED,
    CONVICTED,
    EXONERATED,
    MONTH_DAYS,
    NC_PROBATION,
    NC_RESTRICTED,
    TERMINATED,
)
from features.simulator.population import Population
from features.simulator.timebase import DAY_US, SECOND_US, date_series, ts_series


@dataclass(frozen=True)
class Offsets:
    """Where a chunk's counters start in the id spaces (see `ids`)."""

    offence: int
    admin: int
    obligation: int

    @classmethod
    def of_chunk(cls, chunk: int) -> Offsets:
        base = chunk * CHUNK_SPACE
        return cls(base, base, base)


def _strings(values: tuple[str, ...], index: np.ndarray, name: str) -> pl.Series:
    return pl.Series(name, np.asarray(values, dtype=object)[index], dtype=pl.String)


def null_where(s: pl.Series, mask: np.ndarray) -> pl.Series:
    if not mask.any():
        return s
    return pl.select(pl.when(pl.Series(mask)).then(None).otherwise(s).alias(s.name)).to_series()


_OUTCOME_OF_KIND = np.zeros(4, dtype=np.int64)  # decision kind -> OUTCOME index
_OUTCOME_OF_KIND[EXONERATED] = OUTCOME.index("terminated_exonerating")
_OUTCOME_OF_KIND[TERMINATED] = OUTCOME.index("terminated_other")
_OUTCOME_OF_KIND[ACQUITTED] = OUTCOME.index("acquitted")
_OUTCOME_OF_KIND[CONVICTED] = OUTCOME.index("convicted")


def registered_mask(off: Offences, extracted_us: int) -> np.ndarray:
    return off.detected & (off.reg_us <= extracted_us)


def criminal_frame(
    off: Offences, pop: Population, offsets: Offsets, extracted_us: int, extraction_day: int
) -> pl.DataFrame:
    """criminal_cases at extraction, erroneous double entries included until deleted."""
    base = np.flatnonzero(registered_mask(off, extracted_us))
    dbl = base[(off.double_delete_day[base] >= 0) & (off.double_delete_day[base] > extraction_day)]
    idx = np.concatenate([base, dbl])
    counter = offsets.offence + idx
    counter[len(base) :] += DOUBLE_ENTRY
    final_known = off.final_day[idx] <= extraction_day
    referred = off.referral_day[idx] <= extraction_day
    outcome = np.where(
        final_known,
        _OUTCOME_OF_KIND[off.kind[idx]],
        np.where(referred, OUTCOME.index("sent_to_court"), OUTCOME.index("pending")),
    )
    outcome_at = np.where(final_known, off.final_day[idx], off.referral_day[idx])
    shown_wrong = (off.wrong_category[idx] >= 0) & (off.fix_day[idx] > extraction_day)
    category = np.where(shown_wrong, off.wrong_category[idx], off.category[idx])
    person = off.person[idx]
    frame = pl.DataFrame(
        [
            make_ids("CR", counter).alias("record_id"),
            make_ids("CS", offsets.offence + off.case[idx]).alias("case_id"),
            pop.person_id.gather(person).alias("person_id"),
            date_series("offence_date", off.day[idx]),
            ts_series("registered_at", off.reg_us[idx]),
            _strings(ARTICLE_CODES, off.article[idx], "article"),
            _strings(CRIME_CATEGORY, category, "category"),
            _strings(GRAVITY, ARTICLE_GRAVITY[off.article[idx]], "gravity"),
            pl.Series("street", off.street[idx], dtype=pl.Boolean),
            _strings(OUTCOME, outcome, "outcome"),
            date_series("outcome_at", outcome_at, final_known | referred),
            _strings(REGION_CODES, pop.region[person], "region"),
            null_where(
                _strings(DISTRICT_CODES, off.district[idx], "district"),
                pop.missing["district"][person],
            ),
        ]
    )
    return frame.select(TABLES["criminal_cases"].column_names)


def admin_frame(
    adm: AdminOffences, pop: Population, offsets: Offsets, extracted_us: int, extraction_day: int
) -> pl.DataFrame:
    known = adm.reg_us <= extracted_us
    kept = (adm.expunge_day < 0) | (adm.expunge_day > extraction_day)
    idx = np.flatnonzero(known & kept)
    fine = adm.fine[idx].astype(np.float64)
    frame = pl.DataFrame(
        [
            make_ids("AD", offsets.admin + idx).alias("record_id"),
            pop.person_id.gather(adm.person[idx]).alias("person_id"),
            date_series("offence_date", adm.day[idx]),
            ts_series("registered_at", adm.reg_us[idx]),
            _strings(ADMIN_ARTICLE_CODES, adm.article[idx], "article"),
            _strings(ADMIN_CATEGORY, adm.category[idx], "category"),
            _strings(DETECTED_BY, adm.detected_by[idx], "detected_by"),
            _strings(SANCTION, adm.sanction[idx], "sanction"),
            pl.Series("fine_amount", fine, dtype=pl.Float64).fill_nan(None),
            _strings(REGION_CODES, pop.region[adm.person[idx]], "region"),
        ]
    )
    return frame.select(TABLES["admin_offences"].column_names)


@dataclass
class Releases:
    person: np.ndarray
    released_at: np.ndarray
    sentence: np.ndarray
    months: np.ndarray
    supervised_until: np.ndarray  # -1: none
    recorded_us: np.ndarray


def build_releases(seed: int, careers: Careers, pop: Population, last_day: int) -> Releases:
    """Releases from custody and starts of community sentences, one row per natural key.

    Rows are put in a canonical order and their random numbers keyed by the row, so a
    release is the same however long the simulation runs.
    """
    r = careers.releases
    off = careers.offences
    sentence_prison = np.where(
        r["parole"], SENTENCE.index("parole"), SENTENCE.index("imprisonment")
    )
    supervised_prison = np.where(r["extra"] >= 0, r["released_at"] + r["extra"], -1)
    community = (
        off.detected
        & (off.reg_day <= last_day)
        & (off.kind == CONVICTED)
        & np.isin(off.non_custodial, [NC_PROBATION, NC_RESTRICTED])
    )
    c = np.flatnonzero(community)
    sentence_comm = np.where(
        off.non_custodial[c] == NC_PROBATION,
        SENTENCE.index("probation"),
        SENTENCE.index("restricted_freedom"),
    )
    start = off.final_day[c]
    months = off.nc_months[c]
    person = np.concatenate([r["person"], off.person[c]])
    released = np.concatenate([r["released_at"], start])
    sentence = np.concatenate([sentence_prison, sentence_comm])
    months_all = np.concatenate([r["months"], months])
    supervised = np.concatenate(
        [supervised_prison, start + np.round(months * MONTH_DAYS).astype(np.int64)]
    )
    order = np.lexsort((supervised, months_all, sentence, released, person))
    person, released, sentence = person[order], released[order], sentence[order]
    months_all, supervised = months_all[order], supervised[order]
    # Concurrent sentences starting the same day are one release (the natural key is unique).
    first = np.ones(len(person), dtype=bool)
    first[1:] = (
        (person[1:] != person[:-1])
        | (released[1:] != released[:-1])
        | (sentence[1:] != sentence[:-1])
    )
    person, released, sentence = person[first], released[first], sentence[first]
    months_all, supervised = months_all[first], supervised[first]
    key = (pop.counter[person], released, sentence)
    lag = np.floor(np.log1p(-keyed.uniform(seed, 31, *key)) / np.log(2.0 / 3.0)).astype(np.int64)
    second = (keyed.uniform(seed, 32, *key) * 86_400).astype(np.int64)
    recorded = (released + lag) * DAY_US + second * SECOND_US
    return Releases(person, released, sentence, months_all, supervised, recorded)


def releases_frame(rel: Releases, pop: Population, extracted_us: int) -> pl.DataFrame:
    idx = np.flatnonzero(rel.recorded_us <= extracted_us)
    sup = rel.supervised_until[idx]
    frame = pl.DataFrame(
        [
            pop.person_id.gather(rel.person[idx]).alias("person_id"),
            date_series("released_at", rel.released_at[idx]),
            _strings(SENTENCE, rel.sentence[idx], "sentence"),
            pl.Series("sentence_months", rel.months[idx], dtype=pl.Int64),
            date_series("supervised_until", np.maximum(sup, 0), sup >= 0),
            ts_series("recorded_at", rel.recorded_us[idx]),
        ]
    )
    return frame.select(TABLES["releases"].column_names)
