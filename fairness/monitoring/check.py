"""One monitoring check of a champion: every part computed from frames, one typed result (pure).

`run_check` takes what the command read (the reference = the test snapshot the champion was
audited on, the current scored population, optionally the matured cohort with its labels and
the estimate stored when that cohort was scored, the service's decisions) and returns a
`CheckResult`: input drift, registration-rate drift, score drift and list composition, the
label-free estimate, the realised performance with the estimate's own error, decisions and
outcomes, the feedback-loop indicator, the breaches and whether the re-audit rule fired.
`figures` flattens a result into named numbers: the store keeps them as time series and the
service exports them as gauges.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from fairness.monitoring.alerts import (
    Breach,
    drift_breaches,
    estimated_breaches,
    feedback_breaches,
    rate_breaches,
    realised_advisories,
    realised_breaches,
    reaudit_due,
)
from fairness.monitoring.config import MonitoringConfig
from fairness.monitoring.drift import InputDrift, input_drift
from fairness.monitoring.estimate import GroupEstimate, estimate_performance
from fairness.monitoring.feedback import METHOD, FeedbackResult, feedback_indicator
from fairness.monitoring.groups import groupings
from fairness.monitoring.outcomes import (
    NOT_CAUSAL,
    DecisionCount,
    OutcomeRate,
    decision_counts,
    outcome_rates,
)
from fairness.monitoring.places import PlacesMonitoring, places_figures
from fairness.monitoring.rates import RateDrift, rate_drift
from fairness.monitoring.realised import EstimateCheck, GroupRealised, compare, realised_performance
from fairness.monitoring.scores import ScoreGroup, UnitComposition, list_composition, score_drift
from fairness.policy import FairnessPolicy
from training.model import Tier


class MaturedCohort(BaseModel):
    """The cohort scored one horizon before the check, now with its labels."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    as_of: date
    n: int
    realised: list[GroupRealised]
    estimate_as_of: date | None  # the stored check whose estimate is compared (None: none)
    comparison: list[EstimateCheck]
    feedback: list[FeedbackResult]
    feedback_method: str = METHOD
    outcomes: list[OutcomeRate]
    outcomes_note: str = NOT_CAUSAL


class CheckResult(BaseModel):
    """Everything one check found (JSON: ``model_dump(mode="json")``, as the store keeps it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    version: str
    as_of: date
    checked_at: datetime
    reference: str  # what the reference is (the audited test snapshot, its dates and digest)
    n_reference: int
    n_current: int
    thresholds: list[float]
    tiers: dict[str, float]
    input_drift: list[InputDrift]
    # registration rates (mean recent counts) per group vs the reference (empty: older checks)
    rate_drift: list[RateDrift] = Field(default_factory=list)
    scores: list[ScoreGroup]
    composition: list[UnitComposition]
    estimate: list[GroupEstimate]
    matured: MaturedCohort | None
    matured_note: str | None = None
    decisions: list[DecisionCount]
    breaches: list[Breach]
    reaudit: list[str] = Field(default_factory=list)  # why a re-audit is due (empty: not due)
    # disparities in the policy's advisory metrics (FNR): reported, not breaches
    advisories: list[Breach] = Field(default_factory=list)
    # the places champion's realised performance and its alerts (None: the person model)
    places: PlacesMonitoring | None = None

    @property
    def alert_count(self) -> int:
        """The breaches and the places alerts (what the store counts and the ledger records)."""
        return len(self.breaches) + (len(self.places.alerts) if self.places else 0)


@dataclass(frozen=True)
class CheckInputs:
    """What the command read; frames carry the protected group columns and ``probability``
    (the matured one also ``label``, and ``listed``)."""

    model: str
    version: str
    as_of: date
    checked_at: datetime
    reference_note: str
    reference: pl.DataFrame
    current: pl.DataFrame
    inputs: Sequence[str]
    categorical: Sequence[str]
    tiers: Sequence[Tier]
    matured: pl.DataFrame | None = None
    matured_as_of: date | None = None
    matured_note: str | None = None
    stored_estimate: Sequence[GroupEstimate] | None = None
    stored_estimate_as_of: date | None = None
    decisions: pl.DataFrame | None = None  # DECISION_COLUMNS, all decisions up to the check
    cohort_decisions: pl.DataFrame | None = None  # those belonging to the matured cohort
    previous_breaches: Sequence[Breach] | None = None


def thresholds_of(tiers: Sequence[Tier], policy: FairnessPolicy) -> list[float]:
    """The tier starts of the champion and the policy's operating threshold."""
    return sorted({t.min_probability for t in tiers if t.min_probability > 0} | {policy.threshold})


def run_check(x: CheckInputs, config: MonitoringConfig, policy: FairnessPolicy) -> CheckResult:
    groups = [c for c in config.group_columns if c in x.current.columns]
    thresholds = thresholds_of(x.tiers, policy)
    estimate_settings = config.estimate.with_thresholds(thresholds)
    drift = input_drift(
        x.reference, x.current, x.inputs, config.drift, groups, categorical=x.categorical
    )
    rates = rate_drift(x.reference, x.current, config.rates, groups)
    scores = score_drift(x.reference, x.current, x.tiers, policy.threshold, config.drift, groups)
    composition = list_composition(x.current, policy.threshold, config.unit_column, groups)
    estimate = estimate_performance(
        x.current,
        estimate_settings,
        groups,
        reference=x.reference if "label" in x.reference.columns else None,
    )
    breaches = drift_breaches(drift.results, "input_drift")
    breaches += rate_breaches(rates)
    breaches += drift_breaches([s.drift for s in scores if s.drift], "score_drift")
    breaches += estimated_breaches(estimate, policy)
    matured = None
    advisories: list[Breach] = []
    if x.matured is not None and x.matured_as_of is not None:
        mgroups = [c for c in groups if c in x.matured.columns]
        realised = realised_performance(x.matured, config.realised, thresholds, mgroups)
        comparison = (
            compare(x.stored_estimate, realised, config.realised) if (x.stored_estimate) else []
        )
        feedback = (
            feedback_indicator(x.matured, config.feedback, mgroups)
            if "listed" in x.matured.columns and bool(x.matured["listed"].any())
            else []
        )
        outcomes = (
            outcome_rates(
                x.cohort_decisions, x.matured.select("person_id", "label"), config.outcomes
            )
            if x.cohort_decisions is not None and x.cohort_decisions.height
            else []
        )
        matured = MaturedCohort(
            as_of=x.matured_as_of,
            n=x.matured.height,
            realised=realised,
            estimate_as_of=x.stored_estimate_as_of if x.stored_estimate else None,
            comparison=comparison,
            feedback=feedback,
            outcomes=outcomes,
        )
        breaches += realised_breaches(realised, policy)
        advisories = realised_advisories(realised, policy)
        breaches += feedback_breaches(feedback)
    decisions = (
        decision_counts(x.decisions) if x.decisions is not None and x.decisions.height else []
    )
    return CheckResult(
        model=x.model,
        version=x.version,
        as_of=x.as_of,
        checked_at=x.checked_at,
        reference=x.reference_note,
        n_reference=x.reference.height,
        n_current=x.current.height,
        thresholds=thresholds,
        tiers={t.name: t.min_probability for t in x.tiers},
        input_drift=drift.results,
        rate_drift=rates,
        scores=scores,
        composition=composition,
        estimate=estimate,
        matured=matured,
        matured_note=x.matured_note,
        decisions=decisions,
        breaches=breaches,
        reaudit=reaudit_due(breaches, x.previous_breaches),
        advisories=advisories,
    )


@dataclass(frozen=True)
class Figure:
    """One monitored number: a name (the gauge), its labels, its value."""

    name: str
    labels: dict[str, str]
    value: float


def _g(column: str, group: str, **extra: str) -> dict[str, str]:
    return {"group_column": column, "group": group, **extra}


def figures(result: CheckResult) -> list[Figure]:
    """Every monitored figure of a check as a named number (None values left out)."""
    out: list[Figure] = []

    def add(name: str, labels: dict[str, str], value: float | None) -> None:
        if value is not None:
            out.append(Figure(name, labels, float(value)))

    for d in result.input_drift:
        add("input_psi", _g(d.group_column, d.group, input=d.input), d.psi)
        add("input_missing_share", _g(d.group_column, d.group, input=d.input), d.missing_current)
    for rd in result.rate_drift:
        for bound, ratio, relative in (
            ("value", rd.ratio, rd.relative),
            ("lower", rd.ratio_lower, rd.relative_lower),
            ("upper", rd.ratio_upper, rd.relative_upper),
        ):
            labels = _g(rd.group_column, rd.group, input=rd.input, bound=bound)
            add("input_rate_ratio", labels, ratio)
            add("input_rate_relative", labels, relative)
        add("input_rate_mean", _g(rd.group_column, rd.group, input=rd.input), rd.mean_current)
    for s in result.scores:
        g = _g(s.group_column, s.group)
        add("mean_probability", g, s.mean_probability)
        add("listed_share", g, s.listed_share)
        add("score_psi", g, s.drift.psi if s.drift else None)
        for tier, share in s.tier_shares.items():
            add("tier_share", g | {"tier": tier}, share)
    for c in result.composition:
        for column, shares in c.shares.items():
            for group, share in shares.items():
                add("list_share", _g(column, group, unit=c.unit), share)
    for e in result.estimate:
        g = _g(e.group_column, e.group)
        for metric, iv in (("auc", e.auc), ("brier", e.brier)):
            add(f"estimated_{metric}", g | {"bound": "value"}, iv.value)
            add(f"estimated_{metric}", g | {"bound": "lower"}, iv.lower)
            add(f"estimated_{metric}", g | {"bound": "upper"}, iv.upper)
        for t in e.thresholds:
            for metric, iv in (("fpr", t.fpr), ("fnr", t.fnr)):
                for bound in ("value", "lower", "upper"):
                    add(
                        f"estimated_{metric}",
                        g | {"bound": bound, "threshold": f"{t.threshold:g}"},
                        getattr(iv, bound),
                    )
    if result.matured is not None:
        for r in result.matured.realised:
            g = _g(r.group_column, r.group)
            add("realised_auc", g, r.auc)
            add("realised_calibration_slope", g, r.calibration_slope)
            add("realised_calibration_in_the_large", g, r.calibration_in_the_large)
            for rt in r.thresholds:
                add("realised_fpr", g | {"threshold": f"{rt.threshold:g}"}, rt.fpr)
        for ec in result.matured.comparison:
            for m in ec.metrics:
                add("estimate_error", _g(ec.group_column, ec.group, metric=m.metric), m.error)
        for f in result.matured.feedback:
            add("feedback_ratio", _g(f.group_column, f.group), f.ratio)
        for o in result.matured.outcomes:
            add("outcome_rate", {"unit": o.unit, "decision": o.decision}, o.outcome_rate)
    for dc in result.decisions:
        add("decisions", {"level": dc.level, "key": dc.key, "action": dc.action}, dc.n)
        add("overrides", {"level": dc.level, "key": dc.key, "action": dc.action}, dc.overrides)
    kinds: dict[str, int] = {}
    for b in result.breaches:
        kinds[b.kind] = kinds.get(b.kind, 0) + 1
    for kind in (
        "input_drift",
        "rate_drift",
        "score_drift",
        "estimated_disparity",
        "realised_disparity",
        "calibration",
        "feedback_loop",
    ):
        add("breaches", {"kind": kind}, kinds.get(kind, 0))
    if result.places is not None:
        out += [Figure(*f) for f in places_figures(result.places)]
    add("reaudit", {}, 1.0 if result.reaudit else 0.0)
    add("advisories", {"kind": "advisory_disparity"}, len(result.advisories))
    return out


def mean_ratios(
    reference: pl.DataFrame, current: pl.DataFrame, score: str, group_columns: Sequence[str]
) -> dict[tuple[str, str], float]:
    """Current / reference mean of ``score`` per (group column, group) (NaN: a side empty).

    No longer part of a check: the places score drift is `places_scores.places_score_drift`
    (the same weeks a year before, with a noise model). Kept for the places score test that
    shows why its reference is not the audited test weeks (the season alone moves these
    plain ratios of many districts beyond ``drift.score_mean_ratio_alert``)."""
    grps = groupings([reference, current], group_columns)
    values = [
        f.get_column(score).cast(pl.Float64).fill_null(np.nan).to_numpy()
        for f in (reference, current)
    ]
    out = {}
    for g in grps:
        means = []
        for codes, x in zip(g.codes, values, strict=True):
            ok = ~np.isnan(x)
            total = np.bincount(codes[ok], weights=x[ok], minlength=g.size)
            n = np.bincount(codes[ok], minlength=g.size)
            with np.errstate(divide="ignore", invalid="ignore"):
                means.append(total / n)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = means[1] / means[0]
        out.update({(g.column, label): float(ratio[i]) for i, label in enumerate(g.labels)})
    return out
