"""The feedback-loop indicator: do listed persons get labels more often than comparable
unlisted ones? (pure)

Registrations are partly produced by attention: a person an officer contacts is seen, and a
person who is seen is registered more readily. The model is then judged, and retrained, on
labels its own list helped produce (selective labels). On a matured cohort:

1. Score bands: the cohort's probabilities cut at their quantiles (``bands``), so every band
   holds persons the model rated alike.
2. Per group and band ``b``: listed persons (acted upon: contacted, referred) ``n_lb`` with
   ``y_lb`` labels; unlisted ``n_ub`` with ``y_ub``.
3. Expected labels among the listed had listing changed nothing:
   ``E = Σ_b n_lb · y_ub / n_ub`` over bands holding both; observed ``O = Σ_b y_lb`` over the
   same bands. The indicator is ``O / E`` (indirect standardisation, as a standardised
   mortality ratio; Mantel-Haenszel in spirit).
4. Interval: delta method on ``log(O/E)`` with ``Var O = Σ n_lb r_lb (1 − r_lb)`` and
   ``Var E = Σ n_lb² r_ub (1 − r_ub) / n_ub``.
5. Flag: ratio ≥ ``min_rise`` and the interval's lower end above 1; fewer than
   ``min_listed`` matched listed persons is insufficient evidence.

What it cannot tell: listed persons differ from unlisted ones of the same score in what the
officer saw (that is why they were chosen), so a ratio above 1 is a warning to look, not
proof that listing raised registration; a ratio near 1 does not prove its absence either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict
from scipy import special

from fairness.monitoring.config import FeedbackSettings
from fairness.monitoring.groups import cells, groupings, labels, probabilities

METHOD = (
    "Persons of the matured cohort are matched on score band (quantile bands of the "
    "probability). Within each group, the label rate of unlisted persons in a band is what "
    "the listed persons of that band would be expected to show if listing changed nothing; "
    "the indicator is observed / expected labels among the listed, with a delta-method "
    "interval. Flagged when the ratio is at least min_rise and its interval lies above 1. "
    "Listed persons were chosen for what officers saw, so this is a warning to look, not "
    "proof of a feedback loop."
)

FeedbackStatus = Literal["ok", "flag", "insufficient_evidence"]


class FeedbackResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    group_column: str
    group: str
    n_listed: int  # listed persons in bands that also hold unlisted ones
    n_unlisted: int
    listed_label_rate: float | None
    expected_label_rate: float | None  # from unlisted persons of the same bands
    ratio: float | None
    lower: float | None
    upper: float | None
    status: FeedbackStatus


def feedback_indicator(
    frame: pl.DataFrame,
    settings: FeedbackSettings,
    group_columns: Sequence[str] = (),
    probability: str = "probability",
    listed: str = "listed",
    label: str = "label",
) -> list[FeedbackResult]:
    """The indicator overall and per group (see the module docstring)."""
    p = probabilities(frame, probability)
    y = labels(frame, label)
    on_list = frame.get_column(listed).cast(pl.Boolean).fill_null(False).to_numpy()
    edges = np.unique(np.quantile(p, np.linspace(0, 1, settings.bands + 1)[1:-1]))
    band = np.searchsorted(edges, p, side="right").astype(np.int64)
    n_bands = len(edges) + 1
    grps = groupings([frame], group_columns)
    part = cells(grps)
    key = part.codes[0] * n_bands + band  # (cell, band)
    size = part.size * n_bands

    def per_cell(mask: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        w = mask.astype(np.float64) if weights is None else mask * weights
        return np.bincount(key, weights=w, minlength=size).reshape(part.size, n_bands).T

    n_l, y_l = per_cell(on_list), per_cell(on_list, y)  # bands x cells
    n_u, y_u = per_cell(~on_list), per_cell(~on_list, y)
    z = float(special.ndtri(0.5 + settings.confidence / 2))
    out: list[FeedbackResult] = []
    for j, g in enumerate(grps):
        nl, yl, nu, yu = (part.to_groups(j, a) for a in (n_l, y_l, n_u, y_u))  # bands x groups
        both = (nl > 0) & (nu > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            r_u = np.where(both, yu / np.where(nu > 0, nu, 1), 0.0)
            r_l = np.where(both, yl / np.where(nl > 0, nl, 1), 0.0)
        nl_m = np.where(both, nl, 0.0)
        observed = (np.where(both, yl, 0.0)).sum(axis=0)
        expected = (nl_m * r_u).sum(axis=0)
        var_o = (nl_m * r_l * (1 - r_l)).sum(axis=0)
        var_e = np.where(both, nl_m**2 * r_u * (1 - r_u) / np.where(nu > 0, nu, 1), 0).sum(0)
        n_listed = nl_m.sum(axis=0)
        n_unlisted = np.where(both, nu, 0.0).sum(axis=0)
        for i, name in enumerate(g.labels):
            enough = n_listed[i] >= settings.min_listed and expected[i] > 0 and observed[i] > 0
            ratio = lower = upper = None
            status: FeedbackStatus = "insufficient_evidence"
            if enough:
                ratio = float(observed[i] / expected[i])
                se = float(np.sqrt(var_o[i] / observed[i] ** 2 + var_e[i] / expected[i] ** 2))
                lower, upper = ratio * float(np.exp(-z * se)), ratio * float(np.exp(z * se))
                status = "flag" if ratio >= settings.min_rise and lower > 1 else "ok"
            out.append(
                FeedbackResult(
                    group_column=g.column,
                    group=name,
                    n_listed=int(n_listed[i]),
                    n_unlisted=int(n_unlisted[i]),
                    listed_label_rate=float(observed[i] / n_listed[i]) if n_listed[i] else None,
                    expected_label_rate=float(expected[i] / n_listed[i]) if n_listed[i] else None,
                    ratio=ratio,
                    lower=lower,
                    upper=upper,
                    status=status,
                )
            )
    return out
