"""Score drift and list composition, overall and per group (pure).

Why beside input drift: the inputs can each move a little and the scores a lot (or the other
way round), and it is the scores that put persons on lists. Per group the check reports the
mean predicted rate (what the model expects to happen), quantiles of the probability, the share
in each tier, and the probability's PSI and KS test against the reference (`drift.input_drift`
on the probability column, so the same bins, tests and thresholds judge it). List composition
is who is on each unit's list (probability at or above the operating threshold) by group: a
list that fills up with one group is seen even when the overall figures are steady.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict

from fairness.monitoring.config import DriftSettings
from fairness.monitoring.drift import InputDrift, input_drift
from fairness.monitoring.groups import ALL, groupings, probabilities
from fairness.policy import MISSING_GROUP
from training.model import Tier, assign_tiers

QUANTILES = (0.1, 0.5, 0.9)


class _Result(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScoreGroup(_Result):
    """The score distribution of one group now, and its drift against the reference."""

    group_column: str
    group: str
    n: int
    mean_probability: float | None
    quantiles: dict[str, float]  # "p10", "p50", "p90"
    tier_shares: dict[str, float]  # tier name -> share of the group's rows
    listed_share: float  # share at or above the operating threshold
    drift: InputDrift | None  # the probability's PSI / KS against the reference


class UnitComposition(_Result):
    """Who is on one unit's list, by group (shares of the listed persons)."""

    unit: str
    n_listed: int
    shares: dict[str, dict[str, float]]  # group column -> group -> share of the unit's list


def score_drift(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    tiers: Sequence[Tier],
    threshold: float,
    settings: DriftSettings,
    group_columns: Sequence[str] = (),
    probability: str = "probability",
) -> list[ScoreGroup]:
    """Per group (overall first): mean probability, quantiles, tier shares and listed share
    now, with the probability's drift against ``reference``."""
    p = probabilities(current, probability)
    names = [t.name for t in sorted(tiers, key=lambda t: t.min_probability)]
    tier = assign_tiers(p, tiers)
    listed = p >= threshold
    drifted = input_drift(
        reference.select(probability, *group_columns),
        current.select(probability, *group_columns),
        [probability],
        settings,
        group_columns,
    )
    by_group = {(d.group_column, d.group): d for d in drifted.results}
    out: list[ScoreGroup] = []
    for g in groupings([current], group_columns):
        codes = g.codes[0]
        size = np.bincount(codes, minlength=g.size)
        sums = np.bincount(codes, weights=p, minlength=g.size)
        order = np.lexsort((p, codes))
        starts = np.concatenate([[0], np.cumsum(size)[:-1]])
        tier_counts = {
            name: np.bincount(codes, weights=(tier == name), minlength=g.size) for name in names
        }
        listed_n = np.bincount(codes, weights=listed, minlength=g.size)
        for i, label in enumerate(g.labels):
            n = int(size[i])
            rows = p[order[starts[i] : starts[i] + n]]  # the group's probabilities, sorted
            out.append(
                ScoreGroup(
                    group_column=g.column,
                    group=label,
                    n=n,
                    mean_probability=float(sums[i] / n) if n else None,
                    quantiles={f"p{round(q * 100)}": float(np.quantile(rows, q)) for q in QUANTILES}
                    if n
                    else {},
                    tier_shares={k: float(v[i] / n) if n else 0.0 for k, v in tier_counts.items()},
                    listed_share=float(listed_n[i] / n) if n else 0.0,
                    drift=by_group.get((g.column, label)),
                )
            )
    return out


def list_composition(
    current: pl.DataFrame,
    threshold: float,
    unit_column: str,
    group_columns: Sequence[str],
    probability: str = "probability",
) -> list[UnitComposition]:
    """Per unit (and ``all`` units together): the listed persons' shares by group."""
    p = probabilities(current, probability)
    listed = current.filter(pl.Series(p >= threshold))
    units = [(ALL, listed)]
    if unit_column in listed.columns:
        key = pl.col(unit_column).cast(pl.String).fill_null(MISSING_GROUP)
        parts = listed.with_columns(key.alias("__unit")).partition_by("__unit", as_dict=True)
        units += sorted(
            ((str(k[0]), v.drop("__unit")) for k, v in parts.items()), key=lambda kv: kv[0]
        )
    out = []
    for unit, rows in units:
        shares: dict[str, dict[str, float]] = {}
        for column in group_columns:
            counts = rows.get_column(column).cast(pl.String).fill_null(MISSING_GROUP).value_counts()
            total = max(rows.height, 1)
            rows_ = counts.sort(column).iter_rows(named=True)
            shares[column] = {str(r[column]): r["count"] / total for r in rows_}
        out.append(UnitComposition(unit=unit, n_listed=rows.height, shares=shares))
    return out
