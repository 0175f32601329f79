"""Breaches of a monitoring check and the re-audit rule (pure).

A breach is one figure beyond its threshold: an input or the score drifting (drift status
``alert``), a registration rate moving in a group against the rest of its column (`rates`), a
disparity of the label-free estimate or of the matured cohort beyond the fairness policy, a
group's calibration outside its band, or the feedback-loop indicator raised.
Disparities are judged as the fairness gate judges them: versus the policy's reference group
(else the largest), a breach only when the whole interval of the difference lies beyond the
binding metric's ``max_difference``, so noise alone raises nothing.

- Estimated FPR at the operating threshold: the difference's interval is taken as
  ``[lo_g − hi_ref, hi_g − lo_ref]`` from the two groups' sampled intervals (wider than the
  exact one, so a breach is conservative).
- Realised FPR and calibration gap (mean predicted − observed) on the matured cohort:
  normal-approximation intervals of the difference of the two groups' rates.
- Realised FNR at the operating threshold: judged by the same rule against the policy's FNR
  tolerance, but the policy makes FNR advisory (``binding: false`` in configs/fairness.yaml:
  among the error rates FPR binds, FNR is reported with its interval), so a failure is an
  *advisory* (`realised_advisories`, kind ``advisory_disparity``): kept with the check and
  shown, never counted as a breach, never a ledger alert, never part of the re-audit rule. A
  metric made binding in the policy is judged as a breach instead, with no code change.

`reaudit_due`: the policy rule — a champion with a disparity breach (estimated or realised) in
this check and in the check before it is flagged for re-audit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy import special

from fairness.monitoring.drift import InputDrift
from fairness.monitoring.estimate import GroupEstimate, Interval
from fairness.monitoring.feedback import FeedbackResult
from fairness.monitoring.groups import ALL
from fairness.monitoring.rates import RateDrift
from fairness.monitoring.realised import GroupRealised
from fairness.policy import FairnessPolicy

BreachKind = Literal[
    "input_drift",
    "rate_drift",
    "score_drift",
    "estimated_disparity",
    "realised_disparity",
    "calibration",
    "feedback_loop",
    "advisory_disparity",
]
_Row = TypeVar("_Row", GroupEstimate, GroupRealised)
DISPARITY_KINDS: frozenset[str] = frozenset({"estimated_disparity", "realised_disparity"})


class Breach(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: BreachKind
    figure: str  # "psi:cases_365d", "fpr@0.35", "calibration_gap", "calibration", "feedback"
    group_column: str
    group: str
    value: float | None
    threshold: float | None
    message: str


def drift_breaches(results: Sequence[InputDrift], kind: BreachKind) -> list[Breach]:
    return [
        Breach(
            kind=kind,
            figure=f"psi:{r.input}",
            group_column=r.group_column,
            group=r.group,
            value=r.psi,
            threshold=None,
            message=f"{r.input} drifted in {r.group_column}={r.group} (PSI {r.psi or 0:.3f}, "
            f"p={r.p_value if r.p_value is not None else float('nan'):.2g})",
        )
        for r in results
        if r.status == "alert"
    ]


def rate_breaches(results: Sequence[RateDrift]) -> list[Breach]:
    """A registration rate that moved: a group's relative ratio (overall: the raw ratio) with
    its interval wholly outside the band (`fairness.monitoring.rates`)."""
    out = []
    for r in results:
        if r.status != "alert":
            continue
        overall = r.group_column == ALL
        value, lo, hi = (
            (r.ratio, r.ratio_lower, r.ratio_upper)
            if overall
            else (r.relative, r.relative_lower, r.relative_upper)
        )
        what = "vs the reference" if overall else "vs the rest of its column, vs the reference"
        out.append(
            Breach(
                kind="rate_drift",
                figure=f"rate:{r.input}",
                group_column=r.group_column,
                group=r.group,
                value=value,
                threshold=None,
                message=f"{r.input} per person in {r.group_column}={r.group} moved x"
                f"{value or 0:.2f} [{lo or 0:.2f}, {hi or 0:.2f}] {what} (mean "
                f"{r.mean_reference or 0:.4f} -> {r.mean_current or 0:.4f}): a change in how "
                "the register records it?",
            )
        )
    return out


def _reference(policy: FairnessPolicy, column: str, sizes: dict[str, int]) -> str | None:
    names = {p.name for p in policy.protected}
    ref = policy.attribute(column).reference if column in names else None
    if ref is None or ref not in sizes:
        ref = max(sizes, key=lambda k: sizes[k]) if sizes else None
    return ref


def _by_column(rows: Sequence[_Row]) -> dict[str, list[_Row]]:
    out: dict[str, list[_Row]] = {}
    for r in rows:
        if r.group_column != ALL and r.sufficient:
            out.setdefault(r.group_column, []).append(r)
    return out


def _beyond(lo: float, hi: float, tolerance: float) -> bool:
    return lo > tolerance or hi < -tolerance


def estimated_breaches(estimates: Sequence[GroupEstimate], policy: FairnessPolicy) -> list[Breach]:
    """FPR at the policy threshold from the label-free estimate, if FPR binds."""
    tol = policy.tolerance("fpr")
    if tol is None or not tol.binding or tol.max_difference is None:
        return []
    out = []
    for column, rows in _by_column(estimates).items():
        ref = _reference(policy, column, {r.group: r.n for r in rows})
        at = {r.group: _at(r, policy.threshold) for r in rows}
        base = at.get(ref) if ref else None
        if base is None or base.lower is None or base.upper is None:
            continue
        for group, iv in at.items():
            if group == ref or iv is None or iv.lower is None or iv.upper is None:
                continue
            lo, hi = iv.lower - base.upper, iv.upper - base.lower
            if _beyond(lo, hi, tol.max_difference):
                out.append(
                    Breach(
                        kind="estimated_disparity",
                        figure=f"fpr@{policy.threshold:g}",
                        group_column=column,
                        group=group,
                        value=(iv.value or 0) - (base.value or 0),
                        threshold=tol.max_difference,
                        message=f"estimated FPR of {column}={group} differs from {ref} by "
                        f"[{lo:+.3f}, {hi:+.3f}], beyond ±{tol.max_difference}",
                    )
                )
    return out


def _at(r: GroupEstimate, threshold: float) -> Interval | None:
    for t in r.thresholds:
        if np.isclose(t.threshold, threshold):
            return t.fpr
    return None


def _realised_rates(r: GroupRealised, metric: str, threshold: float) -> tuple[float, float] | None:
    """(rate, its standard error) of ``metric`` for one group on the matured cohort."""
    if metric in ("fpr", "fnr"):
        at = next((t for t in r.thresholds if np.isclose(t.threshold, threshold)), None)
        rate = None if at is None else (at.fpr if metric == "fpr" else at.fnr)
        base = r.n - r.positives if metric == "fpr" else r.positives
        if rate is None or base <= 0:
            return None
        return rate, float(np.sqrt(max(rate * (1 - rate), 1e-12) / base))
    if r.calibration_in_the_large is None or r.calibration_in_the_large_se is None:
        return None
    return -r.calibration_in_the_large, r.calibration_in_the_large_se  # predicted − observed


def realised_breaches(realised: Sequence[GroupRealised], policy: FairnessPolicy) -> list[Breach]:
    """FPR and calibration gap disparities of the matured cohort (those that bind), and each
    group whose calibration is outside its band."""
    out = [
        Breach(
            kind="calibration",
            figure="calibration",
            group_column=r.group_column,
            group=r.group,
            value=r.calibration_slope,
            threshold=None,
            message=f"calibration of {r.group_column}={r.group} outside its band (slope "
            f"{r.calibration_slope or float('nan'):.2f}, calibration-in-the-large "
            f"{r.calibration_in_the_large or float('nan'):+.3f})",
        )
        for r in realised
        if r.calibration_ok is False
    ]
    return out + _realised_disparities(realised, policy, binding=True)


def realised_advisories(realised: Sequence[GroupRealised], policy: FairnessPolicy) -> list[Breach]:
    """Disparities of the matured cohort in the policy's advisory (non-binding) metrics that
    the monitor can compute (FNR), judged by the same rule; reported, not breaches."""
    return _realised_disparities(realised, policy, binding=False)


def _realised_disparities(
    realised: Sequence[GroupRealised], policy: FairnessPolicy, *, binding: bool
) -> list[Breach]:
    z = float(special.ndtri(0.5 + policy.bootstrap.confidence / 2))
    out = []
    for metric in ("fpr", "fnr", "calibration_gap"):
        tol = policy.tolerance(metric)
        if tol is None or tol.binding != binding or tol.max_difference is None:
            continue
        figure = metric if metric == "calibration_gap" else f"{metric}@{policy.threshold:g}"
        for column, rows in _by_column(realised).items():
            ref = _reference(policy, column, {r.group: r.n for r in rows})
            rates = {r.group: _realised_rates(r, metric, policy.threshold) for r in rows}
            base = rates.get(ref) if ref else None
            if base is None:
                continue
            for group, rate in rates.items():
                if group == ref or rate is None:
                    continue
                diff = rate[0] - base[0]
                half = z * float(np.hypot(rate[1], base[1]))
                if _beyond(diff - half, diff + half, tol.max_difference):
                    out.append(
                        Breach(
                            kind="realised_disparity" if binding else "advisory_disparity",
                            figure=figure,
                            group_column=column,
                            group=group,
                            value=diff,
                            threshold=tol.max_difference,
                            message=f"{'' if binding else 'advisory: '}realised {metric} of "
                            f"{column}={group} differs from {ref} by {diff:+.3f} ± {half:.3f}, "
                            f"beyond ±{tol.max_difference}",
                        )
                    )
    return out


def feedback_breaches(results: Sequence[FeedbackResult]) -> list[Breach]:
    return [
        Breach(
            kind="feedback_loop",
            figure="feedback",
            group_column=r.group_column,
            group=r.group,
            value=r.ratio,
            threshold=None,
            message=f"listed persons of {r.group_column}={r.group} got labels {r.ratio or 0:.2f} "
            f"times as often as comparable unlisted ones (interval {r.lower or 0:.2f}-"
            f"{r.upper or 0:.2f}): listing may raise registration",
        )
        for r in results
        if r.status == "flag"
    ]


def reaudit_due(current: Sequence[Breach], previous: Sequence[Breach] | None) -> list[str]:
    """Why the champion must be re-audited (empty: it need not): a disparity breach now and in
    the check before."""
    now = [b for b in current if b.kind in DISPARITY_KINDS]
    before = [b for b in previous or [] if b.kind in DISPARITY_KINDS]
    if not now or not before:
        return []
    return [
        f"disparity beyond the fairness policy in two consecutive checks: {b.message}" for b in now
    ]
