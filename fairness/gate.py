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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from fairness.metrics import INSUFFICIENT, OVERALL_POINT, THRESHOLD_POINT
from fairness.policy import INTERSECTION_SEP, FairnessPolicy, MetricTolerance

Outcome = Literal["pass", "fail", "insufficient_evidence"]
PASS: Outcome = "pass"
FAIL: Outcome = "fail"
NO_EVIDENCE: Outcome = "insufficient_evidence"


@dataclass(frozen=True)
class Check:
    name: str
    outcome: Outcome
    detail: str

    def reason(self) -> str:
        return f"{self.outcome.upper()}: {self.name}: {self.detail}"


@dataclass(frozen=True)
class GateDecision:
    outcome: Outcome
    checks: list[Check]

    @property
    def passed(self) -> bool:
        return self.outcome == PASS

    @property
    def reasons(self) -> list[str]:
        """Failed and unevidenced checks first, then the passed ones."""
        order = {FAIL: 0, NO_EVIDENCE: 1, PASS: 2}
        return [c.reason() for c in sorted(self.checks, key=lambda c: order[c.outcome])]

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "reasons": self.reasons,
            "checks": [asdict(c) for c in self.checks],
        }


def _point(metric: str) -> str:
    return OVERALL_POINT if metric in ("calibration_gap", "auc") else THRESHOLD_POINT


def _interval(est: Mapping[str, Any]) -> str:
    return f"{est['value']:+.3f} [{est['low']:+.3f}, {est['high']:+.3f}]"


def _judge(d: Mapping[str, Any], tol: MetricTolerance) -> tuple[str | None, str | None]:
    """(why the disparity fails, why a ratio beyond the tolerance is not taken as evidence).

    The difference fails when its whole interval lies beyond ``±max_difference``. The ratio
    fails when its whole interval lies beyond ``[1/max_ratio, max_ratio]`` *and* the whole
    difference interval excludes 0: a ratio of rare rates swings widely on a handful of
    events, so it counts only once the groups are shown to differ at all."""
    diff, ratio = d["difference"], d["ratio"]
    has_diff = diff["low"] is not None and diff["high"] is not None
    if (
        tol.max_difference is not None
        and has_diff
        and (diff["low"] > tol.max_difference or diff["high"] < -tol.max_difference)
    ):
        return f"difference {_interval(diff)} beyond ±{tol.max_difference}", None
    has_ratio = ratio["low"] is not None and ratio["high"] is not None
    if not (
        tol.max_ratio is not None
        and has_ratio
        and (ratio["low"] > tol.max_ratio or ratio["high"] < 1 / tol.max_ratio)
    ):
        return None, None
    why = (
        f"ratio {ratio['value']:.2f} [{ratio['low']:.2f}, {ratio['high']:.2f}] "
        f"beyond [{1 / tol.max_ratio:.2f}, {tol.max_ratio}]"
    )
    if not has_diff:
        return None, f"{why} not taken as evidence: the difference has no interval"
    if diff["low"] <= 0 <= diff["high"]:
        return None, f"{why} not taken as evidence: the difference {_interval(diff)} includes 0"
    return f"{why}, difference {_interval(diff)}", None


def fairness_checks(audit: Mapping[str, Any], policy: FairnessPolicy) -> list[Check]:
    """Evidence and binding-disparity checks of one audit (see the module docstring)."""
    checks: list[Check] = []
    for attr in audit["attributes"]:
        name = attr["attribute"]
        intersection = INTERSECTION_SEP in name
        small = [
            f"{r['group']} (n={r['n']})" for r in attr["groups"] if r["status"] == INSUFFICIENT
        ]
        if small and not intersection:
            checks.append(
                Check(
                    f"evidence {name}",
                    NO_EVIDENCE,
                    f"group(s) below the minimum size {policy.min_group_size}: {', '.join(small)}",
                )
            )
        elif small:
            checks.append(
                Check(
                    f"evidence {name}",
                    PASS,
                    f"{len(small)} intersection cell(s) below {policy.min_group_size} "
                    "reported as insufficient evidence (not blocking)",
                )
            )
        for tol in policy.metrics:
            if not tol.binding:
                continue
            point = _point(tol.name)
            rows = [
                d for d in attr["disparities"] if d["metric"] == tol.name and d["point"] == point
            ]
            if not rows:
                continue
            ref = attr["reference"]
            beyond: list[str] = []
            unjudged: list[str] = []
            for d in rows:
                if d["status"] == INSUFFICIENT:
                    continue
                why, note = _judge(d, tol)
                if why is not None:
                    beyond.append(f"{d['group']}: {why}")
                if note is not None:
                    unjudged.append(f"{d['group']}: {note}")
            check_name = f"{tol.name} disparity by {name} vs {ref}"
            if beyond:
                checks.append(Check(check_name, FAIL, "; ".join(beyond + unjudged)))
            else:
                detail = "every interval reaches the tolerance"
                checks.append(Check(check_name, PASS, "; ".join([detail, *unjudged])))
    return checks


def _binding_disparities(audit: Mapping[str, Any], policy: FairnessPolicy) -> dict[str, float]:
    out: dict[str, float] = {}
    binding = {t.name for t in policy.metrics if t.binding}
    for attr in audit["attributes"]:
        for d in attr["disparities"]:
            value = d["difference"]["value"]
            if d["metric"] in binding and d["point"] == _point(d["metric"]) and value is not None:
                out[f"{d['metric']} {attr['attribute']}={d['group']}"] = abs(float(value))
    return out


def champion_checks(
    candidate: Mapping[str, Any], champion: Mapping[str, Any] | None, policy: FairnessPolicy
) -> list[Check]:
    """Performance, calibration and disparity of the candidate versus the champion."""
    gate = policy.gate
    checks: list[Check] = []
    ece = candidate["overall"].get("ece")
    if ece is None:
        checks.append(Check("calibration (ECE)", NO_EVIDENCE, "scores are not probabilities"))
    else:
        outcome = PASS if ece <= gate.max_ece else FAIL
        checks.append(Check("calibration (ECE)", outcome, f"ECE {ece:.3f} (max {gate.max_ece})"))
    if champion is None:
        checks.append(Check("versus champion", PASS, "no current champion: nothing to compare"))
        return checks
    auc_c, auc_0 = candidate["overall"].get("auc"), champion["overall"].get("auc")
    if auc_c is None or auc_0 is None:
        checks.append(Check("AUC vs champion", NO_EVIDENCE, "AUC undefined"))
    else:
        outcome = PASS if auc_c >= auc_0 - gate.max_auc_drop else FAIL
        checks.append(
            Check(
                "AUC vs champion",
                outcome,
                f"AUC {auc_c:.3f} vs champion {auc_0:.3f} (max drop {gate.max_auc_drop})",
            )
        )
    cand, champ = _binding_disparities(candidate, policy), _binding_disparities(champion, policy)
    worse = [
        f"{k}: |{cand[k]:.3f}| vs champion |{champ[k]:.3f}|"
        for k in sorted(cand.keys() & champ.keys())
        if cand[k] > champ[k] + gate.max_disparity_increase
    ]
    checks.append(
        Check(
            "disparities vs champion",
            FAIL if worse else PASS,
            "; ".join(worse)
            if worse
            else f"no binding disparity grew by more than {gate.max_disparity_increase}",
        )
    )
    return checks


def decide(
    candidate: Mapping[str, Any], champion: Mapping[str, Any] | None, policy: FairnessPolicy
) -> GateDecision:
    checks = fairness_checks(candidate, policy) + champion_checks(candidate, champion, policy)
    outcomes = {c.outcome for c in checks}
    if FAIL in outcomes:
        return GateDecision(FAIL, checks)
    if NO_EVIDENCE in outcomes and policy.gate.require_sufficient_evidence:
        return GateDecision(NO_EVIDENCE, checks)
    return GateDecision(PASS, checks)
