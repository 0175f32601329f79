"""Typed results of the places audit, passed between the pure parts, the report and the CLI.

Frozen pydantic models refusing unknown keys (as `fairness.results`): the report's JSON is their
``model_dump(mode="json")`` and `PlacesAudit.model_validate` reads a stored report back (the
gate re-reads a champion's stored audit that way). Intervals are `fairness.results.Estimate`.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from fairness.results import Estimate, GateDecision, ResultModel

ExposureStatus = Literal["flagged", "ok", "too little area", "no incidents"]
FeedbackStatus = Literal["flagged", "ok", "insufficient evidence", "never flagged"]


class ScoreMeasures(ResultModel):
    """Mean weekly PAI@k and Poisson deviance of one score column (model or baseline)."""

    score: str
    weeks: int = Field(ge=0)
    pai: float | None
    deviance: float | None


class Comparison(ResultModel):
    """One measure, challenger versus champion, on the weeks (and cells) both forecast:
    ``ratio`` is mean(challenger) / mean(champion) with its paired bootstrap interval."""

    measure: str
    challenger: float | None
    champion: float | None
    ratio: Estimate
    weeks: int = Field(ge=0)


class ExposureRow(ResultModel):
    """One district's share of the flagged area (mean over weeks), of the observed incidents
    and of the residents; ``ratio`` = flagged-area share / incident share with its bootstrap
    interval over weeks (null value: no incidents)."""

    region: str
    district: str
    flagged_area_share: float
    incident_share: float
    resident_share: float | None
    ratio: Estimate
    resident_ratio: float | None
    weeks_flagged: int = Field(ge=0)
    status: ExposureStatus


class FeedbackRow(ResultModel):
    """One district's registrations and appeals per week before and after it was first flagged,
    their rises (after / before) and the ratio of the two rises with its interval."""

    region: str
    district: str
    onset: date | None
    weeks_before: int = Field(ge=0)
    weeks_after: int = Field(ge=0)
    registrations_before: int = Field(ge=0)
    registrations_after: int = Field(ge=0)
    appeals_before: int = Field(ge=0)
    appeals_after: int = Field(ge=0)
    registration_rise: Estimate
    appeal_rise: Estimate
    divergence: Estimate
    status: FeedbackStatus
    detail: str = ""


class PlacesAudit(ResultModel):
    """The places audit of one version: measures, the comparison with the champion (when
    there is one), exposure by district and the feedback-loop check."""

    model_name: str
    version: str
    area_share: float
    weeks: int = Field(ge=0)
    first_week: date | None
    last_week: date | None
    cells: int = Field(ge=0)
    measures: list[ScoreMeasures]
    comparison: list[Comparison] = Field(default_factory=list)
    exposure: list[ExposureRow]
    feedback: list[FeedbackRow]
    feedback_sources: dict[str, str] = Field(default_factory=dict)
    decision: GateDecision | None = None

    def flagged_exposure(self) -> list[ExposureRow]:
        """Districts flagged for exposure (beyond the ratio, or flagged area without incidents)."""
        return [r for r in self.exposure if r.status in ("flagged", "no incidents")]

    def flagged_feedback(self) -> list[FeedbackRow]:
        return [r for r in self.feedback if r.status == "flagged"]
