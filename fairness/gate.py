"""The promotion gate: pure checks of an audit against the policy and the current champion.

Rules (``configs/fairness.yaml``, sections ``metrics`` and ``gate``):

- a binding disparity **fails** when its whole confidence interval lies beyond the tolerance
  (difference beyond ``±max_difference`` or ratio beyond ``[1/max_ratio, max_ratio]``), so
  sampling noise alone never blocks; advisory metrics are reported, never blocking;
- a ratio counts only when the difference interval excludes 0 too: ratios of rare rates swing
  on a handful of events (a ratio beyond the tolerance without that is named in the check's
  detail as "not taken as evidence"); a rate with no events in a group carries its exact
  interval (`fairness.metrics`), so FPR 0 against a reference of 0.001 is no disparity;
- a group of a single protected attribute below ``min_group_size`` makes the outcome
  ``insufficient_evidence`` (intersection cells below it are reported, not blocking: they are
  small by construction);
- versus the champion: AUC not worse by more than ``max_auc_drop``, ECE at most ``max_ece``,
  and no binding disparity larger (in absolute value) than the champion's by more than
  ``max_disparity_increase``.

Outcome: ``fail`` if any check fails, else ``insufficient_evidence`` if any check lacks
evidence (and the policy requires it), else ``pass``. Every check becomes a reason.

The gate reads the typed audit (`fairness.results.AuditResult`) through its attributes; a
mapping (a stored report's ``audit``) is validated into one first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fairness.metrics import OVERALL_POINT, THRESHOLD_POINT
from fairness.policy import INTERSECTION_SEP, FairnessPolicy, MetricTolerance
from fairness.results import (
    FAIL,
    NO_EVIDENCE,
    PASS,
    AuditResult,
    Disparity,
    Estimate,
    GateCheck,
    GateDecision,
    Outcome,
    as_audit,
)

Check = GateCheck  # the name this module used before the results were typed

__all__ = [
    "FAIL", "NO_EVIDENCE", "PASS", "Check", "GateCheck", "GateDecision", "Outcome",
    "champion_checks", "decide", "fairness_checks",
]  # fmt: skip


def _point(metric: str) -> str:
    return OVERALL_POINT if metric in ("calibration_gap", "auc") else THRESHOLD_POINT


def _interval(est: Estimate) -> str:
    return f"{est.value:+.3f} [{est.low:+.3f}, {est.high:+.3f}]"


def _judge(d: Disparity, tol: MetricTolerance) -> tuple[str | None, str | None]:
    """(why the disparity fails, why a ratio beyond the tolerance is not taken as evidence).

    The difference fails when its whole interval lies beyond ``±max_difference``. The ratio
    fails when its whole interval lies beyond ``[1/max_ratio, max_ratio]`` *and* the whole
    difference interval excludes 0: a ratio of rare rates swings widely on a handful of
    events, so it counts only once the groups are shown to differ at all."""
    diff, ratio = d.difference, d.ratio
    if (
        tol.max_difference is not None
        and diff.low is not None
        and diff.high is not None
        and (diff.low > tol.max_difference or diff.high < -tol.max_difference)
    ):
        return f"difference {_interval(diff)} beyond ±{tol.max_difference}", None
    if not (
        tol.max_ratio is not None
        and ratio.low is not None
        and ratio.high is not None
        and (ratio.low > tol.max_ratio or ratio.high < 1 / tol.max_ratio)
    ):
        return None, None
    why = (
        f"ratio {ratio.value:.2f} [{ratio.low:.2f}, {ratio.high:.2f}] "
        f"beyond [{1 / tol.max_ratio:.2f}, {tol.max_ratio}]"
    )
    if diff.low is None or diff.high is None:
        return None, f"{why} not taken as evidence: the difference has no interval"
    if diff.low <= 0 <= diff.high:
        return None, f"{why} not taken as evidence: the difference {_interval(diff)} includes 0"
    return f"{why}, difference {_interval(diff)}", None


def fairness_checks(
    audit: AuditResult | Mapping[str, Any], policy: FairnessPolicy
) -> list[GateCheck]:
    """Evidence and binding-disparity checks of one audit (see the module docstring)."""
    checks: list[GateCheck] = []
    for attr in as_audit(audit).attributes:
        name = attr.attribute
        intersection = INTERSECTION_SEP in name
        small = [f"{r.group} (n={r.n})" for r in attr.insufficient_groups]
        if small and not intersection:
            checks.append(
                GateCheck(
                    name=f"evidence {name}",
                    outcome=NO_EVIDENCE,
                    detail=f"group(s) below the minimum size {policy.min_group_size}: "
                    + ", ".join(small),
                )
            )
        elif small:
            checks.append(
                GateCheck(
                    name=f"evidence {name}",
                    outcome=PASS,
                    detail=f"{len(small)} intersection cell(s) below {policy.min_group_size} "
                    "reported as insufficient evidence (not blocking)",
                )
            )
        for tol in policy.metrics:
            if not tol.binding:
                continue
            rows = attr.disparities_of(tol.name, _point(tol.name))
            if not rows:
                continue
            beyond: list[str] = []
            unjudged: list[str] = []
            for d in rows:
                if not d.sufficient:
                    continue
                why, note = _judge(d, tol)
                if why is not None:
                    beyond.append(f"{d.group}: {why}")
                if note is not None:
                    unjudged.append(f"{d.group}: {note}")
            check_name = f"{tol.name} disparity by {name} vs {attr.reference}"
            if beyond:
                checks.append(
                    GateCheck(name=check_name, outcome=FAIL, detail="; ".join(beyond + unjudged))
                )
            else:
                detail = "; ".join(["every interval reaches the tolerance", *unjudged])
                checks.append(GateCheck(name=check_name, outcome=PASS, detail=detail))
    return checks


def _binding_disparities(audit: AuditResult, policy: FairnessPolicy) -> dict[str, float]:
    out: dict[str, float] = {}
    binding = {t.name for t in policy.metrics if t.binding}
    for attr in audit.attributes:
        for d in attr.disparities:
            value = d.difference.value
            if d.metric in binding and d.point == _point(d.metric) and value is not None:
                out[f"{d.metric} {attr.attribute}={d.group}"] = abs(value)
    return out


def champion_checks(
    candidate: AuditResult | Mapping[str, Any],
    champion: AuditResult | Mapping[str, Any] | None,
    policy: FairnessPolicy,
) -> list[GateCheck]:
    """Performance, calibration and disparity of the candidate versus the champion."""
    gate = policy.gate
    cand_audit = as_audit(candidate)
    checks: list[GateCheck] = []
    ece = cand_audit.overall.get("ece")
    if ece is None:
        checks.append(
            GateCheck(
                name="calibration (ECE)", outcome=NO_EVIDENCE, detail="scores are not probabilities"
            )
        )
    else:
        checks.append(
            GateCheck(
                name="calibration (ECE)",
                outcome=PASS if ece <= gate.max_ece else FAIL,
                detail=f"ECE {ece:.3f} (max {gate.max_ece})",
            )
        )
    if champion is None:
        checks.append(
            GateCheck(
                name="versus champion",
                outcome=PASS,
                detail="no current champion: nothing to compare",
            )
        )
        return checks
    champ_audit = as_audit(champion)
    auc_c, auc_0 = cand_audit.overall.get("auc"), champ_audit.overall.get("auc")
    if auc_c is None or auc_0 is None:
        checks.append(
            GateCheck(name="AUC vs champion", outcome=NO_EVIDENCE, detail="AUC undefined")
        )
    else:
        checks.append(
            GateCheck(
                name="AUC vs champion",
                outcome=PASS if auc_c >= auc_0 - gate.max_auc_drop else FAIL,
                detail=f"AUC {auc_c:.3f} vs champion {auc_0:.3f} (max drop {gate.max_auc_drop})",
            )
        )
    cand = _binding_disparities(cand_audit, policy)
    champ = _binding_disparities(champ_audit, policy)
    worse = [
        f"{k}: |{cand[k]:.3f}| vs champion |{champ[k]:.3f}|"
        for k in sorted(cand.keys() & champ.keys())
        if cand[k] > champ[k] + gate.max_disparity_increase
    ]
    checks.append(
        GateCheck(
            name="disparities vs champion",
            outcome=FAIL if worse else PASS,
            detail="; ".join(worse)
            if worse
            else f"no binding disparity grew by more than {gate.max_disparity_increase}",
        )
    )
    return checks


def outcome_of(checks: list[GateCheck], require_sufficient_evidence: bool = True) -> Outcome:
    """``fail`` if any check fails, else ``insufficient_evidence`` if any lacks evidence (and
    that is required), else ``pass``."""
    outcomes = {c.outcome for c in checks}
    if FAIL in outcomes:
        return FAIL
    if NO_EVIDENCE in outcomes and require_sufficient_evidence:
        return NO_EVIDENCE
    return PASS


def decide(
    candidate: AuditResult | Mapping[str, Any],
    champion: AuditResult | Mapping[str, Any] | None,
    policy: FairnessPolicy,
) -> GateDecision:
    """The gate's decision on ``candidate`` (a typed audit, or a stored report's ``audit``
    mapping, validated here) against the current champion's audit (None: no champion)."""
    cand = as_audit(candidate)
    champ = None if champion is None else as_audit(champion)
    checks = fairness_checks(cand, policy) + champion_checks(cand, champ, policy)
    return GateDecision(
        outcome=outcome_of(checks, policy.gate.require_sufficient_evidence), checks=checks
    )
