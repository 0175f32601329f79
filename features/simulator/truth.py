"""The truth beside a delivery: p_true and labels per as-of date, and the latent world.

p_true(i, T) = 1 - exp(-F_i) * prod_k (1 - P_k), where
- F_i is the expected number of offences committed after T and registered by T + H, summed
  over the months of the window with the simulator's own hazard (accumulated in `careers`),
  using custody as known at T and the realised status and admin-offence paths;
- P_k, for each offence k of person i committed by T and not registered by T, is the chance
  that it is registered inside the window (detection and lag are still unknown at T).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from features.contract.schema import CRIME_CATEGORY, GRAVITY, SEX
from features.simulator.careers import Careers
from features.simulator.cases import Offsets, null_where
from features.simulator.codes import ARTICLE_CODES, ARTICLE_GRAVITY, REGION_CODES
from features.simulator.config import SimulatorConfig
from features.simulator.hazard import Window, pending_probability
from features.simulator.ids import make_ids
from features.simulator.population import Population, ethnicity_codes
from features.simulator.timebase import DAY_US, LagDistribution, date_series, ts_series


@dataclass
class Probabilities:
    p_true: np.ndarray
    p_future: np.ndarray  # from offences after as_of only
    p_pending: np.ndarray  # from offences by as_of, not yet registered


def probabilities(
    careers: Careers, windows: list[Window], lag: LagDistribution, n: int
) -> dict[int, Probabilities]:
    off = careers.offences
    out: dict[int, Probabilities] = {}
    for w in windows:
        known = off.detected & (off.reg_day <= w.as_of)
        pend = (off.day <= w.as_of) & ~known
        p_k = pending_probability(off.day[pend], off.detect_p[pend], w, lag)
        log_none = np.zeros(n)
        np.add.at(log_none, off.person[pend], np.log1p(-p_k))
        future = careers.future[w.as_of]
        out[w.as_of] = Probabilities(
            1.0 - np.exp(-future + log_none), 1.0 - np.exp(-future), 1.0 - np.exp(log_none)
        )
    return out


def observed_labels(
    criminal: pl.DataFrame, person_id: pl.Series, as_of: int, horizon: int
) -> np.ndarray:
    """The contract's label on the delivered rows: a case registered in (end of T, end of T+H]."""
    lo = pl.lit((as_of + 1) * DAY_US, dtype=pl.Int64).cast(pl.Datetime("us", "UTC"))
    hi = pl.lit((as_of + horizon + 1) * DAY_US, dtype=pl.Int64).cast(pl.Datetime("us", "UTC"))
    hits = criminal.filter((pl.col("registered_at") >= lo) & (pl.col("registered_at") < hi))
    return person_id.is_in(hits["person_id"].unique().implode()).to_numpy()


def labels_frame(
    pop: Population,
    careers: Careers,
    windows: list[Window],
    horizon: int,
    probs: dict[int, Probabilities],
    criminal: pl.DataFrame,
) -> pl.DataFrame:
    """One row per (person, as_of): p_true, the observed label and latent audit columns."""
    off = careers.offences
    frames = []
    for w in windows:
        committed = (off.day > w.as_of) & (off.day <= w.last)
        n_off = np.bincount(off.person[committed], minlength=pop.n)
        n_reg = np.bincount(
            off.person[off.detected & (off.reg_day > w.as_of) & (off.reg_day <= w.last)],
            minlength=pop.n,
        )
        p = probs[w.as_of]
        frames.append(
            pl.DataFrame(
                [
                    pop.person_id.alias("person_id"),
                    date_series("as_of", np.full(pop.n, w.as_of)),
                    pl.Series("horizon_days", np.full(pop.n, horizon), dtype=pl.Int32),
                    pl.Series("p_true", p.p_true, dtype=pl.Float64),
                    pl.Series("label", observed_labels(criminal, pop.person_id, w.as_of, horizon)),
                    pl.Series("p_future", p.p_future, dtype=pl.Float64),
                    pl.Series("p_pending", p.p_pending, dtype=pl.Float64),
                    pl.Series("offences_in_window", n_off, dtype=pl.Int32),
                    pl.Series("registrations_in_window", n_reg, dtype=pl.Int32),
                ]
            )
        )
    return pl.concat(frames)


def persons_frame(pop: Population, careers: Careers, cfg: SimulatorConfig) -> pl.DataFrame:
    """Latent attributes per person (ethnicity unmasked, propensity, lifetime counts)."""
    off = careers.offences
    codes = np.asarray(ethnicity_codes(cfg), dtype=object)
    return pl.DataFrame(
        [
            pop.person_id.alias("person_id"),
            pl.Series("sex", np.asarray(SEX, dtype=object)[np.where(pop.male, 0, 1)], pl.String),
            pl.Series("region", np.asarray(REGION_CODES, dtype=object)[pop.region], pl.String),
            pl.Series("ethnicity", codes[pop.ethnicity], pl.String),
            pl.Series("log_propensity", pop.log_u, dtype=pl.Float64),
            pl.Series("propensity", pop.u, dtype=pl.Float64),
            pl.Series("detection_bias", pop.bias, dtype=pl.Float64),
            pl.Series("offences_total", np.bincount(off.person, minlength=pop.n), dtype=pl.Int32),
            pl.Series(
                "detected_total",
                np.bincount(off.person[off.detected], minlength=pop.n),
                dtype=pl.Int32,
            ),
        ]
    )


def offences_frame(pop: Population, careers: Careers, offsets: Offsets) -> pl.DataFrame:
    """Every offence committed, detected or not, with the ids it has (or will have)."""
    off = careers.offences
    counter = offsets.offence + np.arange(len(off.person), dtype=np.int64)
    return pl.DataFrame(
        [
            pop.person_id.gather(off.person).alias("person_id"),
            date_series("offence_date", off.day),
            pl.Series(
                "category", np.asarray(CRIME_CATEGORY, dtype=object)[off.category], pl.String
            ),
            pl.Series("article", np.asarray(ARTICLE_CODES, dtype=object)[off.article], pl.String),
            pl.Series(
                "gravity",
                np.asarray(GRAVITY, dtype=object)[ARTICLE_GRAVITY[off.article]],
                pl.String,
            ),
            pl.Series("street", off.street, dtype=pl.Boolean),
            pl.Series("detect_prob", off.detect_p, dtype=pl.Float64),
            pl.Series("detected", off.detected, dtype=pl.Boolean),
            null_where(ts_series("registered_at", off.reg_us), ~off.detected),
            null_where(make_ids("CR", counter).alias("record_id"), ~off.detected),
            make_ids("CS", offsets.offence + off.case).alias("case_id"),
        ]
    )
