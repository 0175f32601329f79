"""Typed results of the fairness stage, passed between the audit, the gate, the report and the CLI.

An audit (`AuditResult`) holds one `AttributeAudit` per protected attribute or intersection:
its groups (`GroupMetrics`: n, status, per-metric `Estimate` overall and at each operating
point, calibration) and its disparities to the reference group (`Disparity`: difference and
ratio, each an `Estimate` with its interval). A group below the minimum size, and every
disparity involving it, has the status ``insufficient_evidence`` and values ``None`` (never
zero, never dropped); the models refuse anything else. The gate's verdict is a
`GateDecision` of `GateCheck`\\ s; the report's extra sections are `ProxyCheck`,
`LabelBiasRow` and `MitigationWhatIf`.

Every model is frozen and refuses unknown keys, and is read through its attributes only (no
mapping access: ``audit["attributes"]`` is a TypeError and a model never equals a dict). The
JSON written to disk (report, MLflow artifacts, ledger reasons) is ``model_dump(mode="json")``
of them and keeps the keys it always had, so `AuditResult.model_validate` (or `as_audit`)
reads a stored report's ``audit`` back.

Fields the gate does not need (the audit's labels, a group's calibration, ...) have defaults,
so a hand-made audit with only groups and disparities can be judged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fairness.policy import Bootstrap

Status = Literal["ok", "insufficient_evidence"]
OK: Status = "ok"
INSUFFICIENT: Status = "insufficient_evidence"
Outcome = Literal["pass", "fail", "insufficient_evidence"]
PASS: Outcome = "pass"
FAIL: Outcome = "fail"
NO_EVIDENCE: Outcome = "insufficient_evidence"


class ResultModel(BaseModel):
    """Frozen, unknown keys refused: results are values, read through attributes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- the audit
class Estimate(ResultModel):
    """A value with its confidence interval; ``None`` where undefined or not evidenced."""

    value: float | None = None
    low: float | None = None
    high: float | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Estimate:
        for name in ("value", "low", "high"):
            x = getattr(self, name)
            if x is not None and not math.isfinite(x):
                raise ValueError(f"{name} must be finite or null (got {x})")
        if (self.low is None) != (self.high is None):
            raise ValueError("an interval needs both low and high (or neither)")
        if self.low is not None and self.high is not None and self.low > self.high + 1e-12:
            raise ValueError(f"interval low {self.low} is above high {self.high}")
        return self

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None


class CalibrationBin(ResultModel):
    """Mean predicted against observed in one equal-frequency bin of a group's scores."""

    n: float = Field(ge=0)
    mean_predicted: float
    observed: float


class GroupMetrics(ResultModel):
    """One group of one attribute: score metrics (``overall``) and rates at each point."""

    group: str
    n: int = Field(ge=0)
    positives: int | None = Field(default=None, ge=0)
    reference: bool = False
    status: Status
    overall: dict[str, Estimate] = {}
    points: dict[str, dict[str, Estimate]] = {}
    calibration_slope: float | None = None
    calibration_bins: list[CalibrationBin] = []

    @model_validator(mode="after")
    def _insufficient_has_no_values(self) -> GroupMetrics:
        if self.status == INSUFFICIENT:
            values = [
                *self.overall.values(),
                *(e for p in self.points.values() for e in p.values()),
            ]
            if any(e.value is not None for e in values) or self.calibration_slope is not None:
                raise ValueError(f"group {self.group!r} lacks evidence yet carries values")
        return self

    @property
    def sufficient(self) -> bool:
        return self.status == OK

    def at(self, point: str) -> dict[str, Estimate]:
        """The rates at operating point ``point`` (empty if the audit has no such point)."""
        return self.points.get(point, {})


class Disparity(ResultModel):
    """A group's metric against the reference group's at one point: difference and ratio."""

    group: str
    point: str
    metric: str
    status: Status
    difference: Estimate
    ratio: Estimate

    @model_validator(mode="after")
    def _insufficient_has_no_values(self) -> Disparity:
        if self.status == INSUFFICIENT and (
            self.difference.value is not None or self.ratio.value is not None
        ):
            raise ValueError(f"disparity of {self.group!r} lacks evidence yet carries values")
        return self

    @property
    def sufficient(self) -> bool:
        return self.status == OK


class AttributeAudit(ResultModel):
    """The audit of one protected attribute (or intersection ``a × b``)."""

    attribute: str
    reference: str
    n: int | None = Field(default=None, ge=0)
    scores_are_probabilities: bool | None = None
    groups: list[GroupMetrics]
    disparities: list[Disparity] = []
    composition: dict[str, dict[str, float]] = {}

    @model_validator(mode="after")
    def _groups_known(self) -> AttributeAudit:
        names = [g.group for g in self.groups]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.attribute}: a group is listed twice")
        if names and self.reference not in names:
            raise ValueError(f"{self.attribute}: reference {self.reference!r} is not a group")
        unknown = sorted({d.group for d in self.disparities} - set(names))
        if unknown:
            raise ValueError(f"{self.attribute}: disparities of unknown group(s) {unknown}")
        return self

    def group(self, name: str) -> GroupMetrics:
        for g in self.groups:
            if g.group == name:
                return g
        raise KeyError(f"{self.attribute} has no group {name!r}")

    @property
    def insufficient_groups(self) -> list[GroupMetrics]:
        return [g for g in self.groups if g.status == INSUFFICIENT]

    def disparities_of(self, metric: str, point: str) -> list[Disparity]:
        return [d for d in self.disparities if d.metric == metric and d.point == point]


class AuditResult(ResultModel):
    """The audit of one scored table: overall metrics and one `AttributeAudit` per attribute."""

    label: str | None = None
    score: str | None = None
    threshold: float | None = None
    capacities: list[float] = []
    min_group_size: int | None = None
    bootstrap: Bootstrap | None = None
    overall: dict[str, float | None]
    attributes: list[AttributeAudit]

    def attribute(self, name: str) -> AttributeAudit:
        for a in self.attributes:
            if a.attribute == name:
                return a
        raise KeyError(f"the audit has no attribute {name!r}")


def as_audit(audit: AuditResult | Mapping[str, Any]) -> AuditResult:
    """``audit`` itself, or the mapping (a stored report's ``audit``) validated into one."""
    return audit if isinstance(audit, AuditResult) else AuditResult.model_validate(audit)


# --------------------------------------------------------------------------- the gate
class GateCheck(ResultModel):
    """One check of the gate; its `reason` is what the report and the ledger record."""

    name: str
    outcome: Outcome
    detail: str

    def reason(self) -> str:
        return f"{self.outcome.upper()}: {self.name}: {self.detail}"


class GateDecision(ResultModel):
    """The gate's outcome and every check behind it; ``champion`` (when set, even to None)
    names the version it was compared with."""

    outcome: Outcome
    checks: list[GateCheck]
    champion: str | None = None

    @property
    def passed(self) -> bool:
        return self.outcome == PASS

    @property
    def reasons(self) -> list[str]:
        """Failed and unevidenced checks first, then the passed ones."""
        order = {FAIL: 0, NO_EVIDENCE: 1, PASS: 2}
        return [c.reason() for c in sorted(self.checks, key=lambda c: order[c.outcome])]

    def as_dict(self) -> dict[str, Any]:
        """The decision as the report's JSON holds it (``champion`` only when it was set)."""
        out: dict[str, Any] = {
            "outcome": self.outcome,
            "reasons": self.reasons,
            "checks": [c.model_dump(mode="json") for c in self.checks],
        }
        if "champion" in self.model_fields_set:
            out["champion"] = self.champion
        return out


# --------------------------------------------------------------------------- report sections
class ProxyCheck(ResultModel):
    """How well the model inputs predict one protected attribute (see `audit.proxy_check`)."""

    attribute: str
    status: Status
    auc: float | None
    strongest: list[str]
    weights: list[float]
    reason: str


class LabelBiasRow(ResultModel):
    """One group's error rates against recorded labels and against the simulator's truth."""

    attribute: str
    group: str
    n: int = Field(ge=0)
    status: Status
    recorded_rate: float | None
    true_rate: float | None
    fpr_recorded: float | None
    fpr_true: float | None
    fnr_recorded: float | None
    fnr_true: float | None
    reason: str | None


class GroupRates(ResultModel):
    """Selection rate, FPR, FNR and PPV of one group's flags (None where undefined)."""

    selection_rate: float | None
    fpr: float | None
    fnr: float | None
    ppv: float | None


class MitigationSummary(ResultModel):
    """Accuracy, selection rate and per-group rates of one set of flags."""

    accuracy: float
    selection_rate: float
    groups: dict[str, GroupRates]


class GroupThresholdsSummary(MitigationSummary):
    accuracy_cost: float
    thresholds: dict[str, float]


class OptimizerSummary(MitigationSummary):
    accuracy_cost: float
    constraint: str


class MitigationWhatIf(ResultModel):
    """Before, with FPR-matching group thresholds, and with Fairlearn's `ThresholdOptimizer`."""

    statement: str
    reference: str
    before: MitigationSummary
    group_thresholds: GroupThresholdsSummary
    threshold_optimizer: OptimizerSummary
