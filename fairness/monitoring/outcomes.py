"""Decisions per unit and officer, and the outcomes of persons by decision (pure).

The decisions are the service's records (who decided what about whom, and whether it was an
override of the model's tier); the command hands them over as a frame with the columns
``person_id, officer, unit, action, override``. Once the cohort has matured, the outcome rate
(the label: a new registration within the horizon) of the persons is reported by decision:
contacted, referred, no action, disagreed, override.

These rates are **not causal effects**: officers chose whom to contact, and a person who got
support and did not re-offend is no proof the support worked (nor is the reverse proof that
it failed). The statement `NOT_CAUSAL` goes with every report of them.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict
from scipy import special

from fairness.monitoring.config import OutcomeSettings
from fairness.monitoring.groups import ALL
from riskcast.errors import InputError

NOT_CAUSAL = (
    "Outcome rates by decision describe what happened to the persons after each decision; "
    "they are not causal effects. Officers chose whom to contact or refer, so the groups "
    "differ before any decision; a person who got support and did not re-offend is no proof "
    "the support worked."
)
OVERRIDE = "override"
DECISION_COLUMNS = ("person_id", "officer", "unit", "action", "override")


class _Result(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DecisionCount(_Result):
    """Decisions of one unit or officer by action."""

    level: str  # "unit" or "officer" (or "all")
    key: str
    action: str
    n: int
    overrides: int


class OutcomeRate(_Result):
    """Outcome rate of the matured cohort's persons by the decision taken about them."""

    unit: str
    decision: str  # an action, or "override"
    n: int
    outcome_rate: float | None  # None below min_count (counted, not shown)
    lower: float | None
    upper: float | None


def _check(decisions: pl.DataFrame) -> None:
    missing = [c for c in DECISION_COLUMNS if c not in decisions.columns]
    if missing:
        raise InputError(f"decisions lack the columns {', '.join(missing)}")


def decision_counts(decisions: pl.DataFrame) -> list[DecisionCount]:
    """Decisions by action and overrides, overall, per unit and per officer."""
    _check(decisions)
    frame = decisions.with_columns(pl.lit(ALL).alias("__all"))
    out: list[DecisionCount] = []
    for level, column in (("all", "__all"), ("unit", "unit"), ("officer", "officer")):
        grouped = (
            frame.group_by(column, "action")
            .agg(pl.len().alias("n"), pl.col("override").cast(pl.Int64).sum().alias("ov"))
            .sort(column, "action")
        )
        out += [
            DecisionCount(level=level, key=str(k), action=str(a), n=int(n), overrides=int(o))
            for k, a, n, o in grouped.iter_rows()
        ]
    return out


def _wilson(k: float, n: float, z: float) -> tuple[float, float]:
    centre = (k + z * z / 2) / (n + z * z)
    half = z * np.sqrt(k * (n - k) / n + z * z / 4) / (n + z * z)
    return float(centre - half), float(centre + half)


def outcome_rates(
    decisions: pl.DataFrame,
    outcomes: pl.DataFrame,
    settings: OutcomeSettings,
    confidence: float = 0.95,
) -> list[OutcomeRate]:
    """Outcome rates (``outcomes``: ``person_id, label``) by decision, overall and per unit;
    a person's last decision counts, and an override counts as ``override`` whatever its
    action. Wilson intervals."""
    _check(decisions)
    last = decisions.unique("person_id", keep="last", maintain_order=True)
    joined = last.join(
        outcomes.select(pl.col("person_id").cast(pl.String), "label"),
        on="person_id",
        how="inner",
    ).with_columns(
        pl.when(pl.col("override")).then(pl.lit(OVERRIDE)).otherwise(pl.col("action")).alias("d")
    )
    z = float(special.ndtri(0.5 + confidence / 2))
    out: list[OutcomeRate] = []
    for unit, rows in [(ALL, joined), *sorted(joined.partition_by("unit", as_dict=True).items())]:
        name = unit if isinstance(unit, str) else str(unit[0])
        grouped = rows.group_by("d").agg(pl.len().alias("n"), pl.col("label").sum().alias("k"))
        for decision, n, k in grouped.sort("d").iter_rows():
            shown = n >= settings.min_count
            lo, hi = _wilson(float(k), float(n), z) if shown else (None, None)
            out.append(
                OutcomeRate(
                    unit=name,
                    decision=str(decision),
                    n=int(n),
                    outcome_rate=float(k / n) if shown else None,
                    lower=lo,
                    upper=hi,
                )
            )
    return out
