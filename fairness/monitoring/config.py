"""The monitoring configuration (``configs/monitoring.yaml``) as typed pydantic models.

Read through `riskcast.configio` like every other config, so a bad file names the field;
unknown keys are refused. The thresholds' rationale lives as comments in the YAML file, beside
the numbers an operator would change.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fairness.monitoring.places_config import PlacesMonitoringSettings
from riskcast.configio import find_config, load_yaml_model

MONITORING_FILE = "monitoring.yaml"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DriftSettings(_Model):
    """Population stability and distribution tests of the model inputs."""

    bins: int = Field(default=10, ge=2)
    epsilon: float = Field(default=1e-4, gt=0, lt=0.01)
    psi_watch: float = Field(default=0.1, gt=0)
    psi_alert: float = Field(default=0.25, gt=0)
    test_alpha: float = Field(default=0.01, gt=0, lt=1)
    test_max_rows: int = Field(default=5_000, ge=100)
    missing_watch: float = Field(default=0.02, gt=0, lt=1)
    missing_alert: float = Field(default=0.05, gt=0, lt=1)
    new_category_alert: float = Field(default=0.01, gt=0, lt=1)
    min_group_size: int = Field(default=50, ge=1)
    seed: int = 0
    score_mean_ratio_alert: float = Field(
        default=0.2,
        gt=0,
        description="places score drift (`places_scores`), the band [1 - a, 1 + a]: the mean "
        "forecast (expected count per cell-week) over the places.drift window against the "
        "champion's forecast of the same weeks a year before (places.drift.season_lag_weeks), "
        "per group (overall, region, district); a breach needs the ratio outside the band and "
        "its test of ratio 1 (quasi-Poisson with between-district noise, as places input drift) "
        "to survive Benjamini-Hochberg at places.drift.fdr. Not used for the person model",
    )

    @model_validator(mode="after")
    def _ordered(self) -> DriftSettings:
        if self.psi_watch >= self.psi_alert:
            raise ValueError("psi_watch must be below psi_alert")
        if self.missing_watch >= self.missing_alert:
            raise ValueError("missing_watch must be below missing_alert")
        return self


class RateSettings(_Model):
    """Registration-rate drift (`fairness.monitoring.rates`): the mean of recent-count inputs
    per group, now vs the reference, relative to the rest of the group's column."""

    inputs: list[str] = Field(
        default_factory=lambda: ["cases_90d", "cases_minor_365d", "admin_offences_365d"],
        description="count inputs whose mean per person is a registration rate (those absent "
        "from the frames are skipped)",
    )
    group_columns: list[str] | None = Field(
        default=None, description="the columns judged (None: every monitored group column)"
    )
    band: float = Field(
        default=1.1,
        gt=1,
        description="a group alerts when its relative ratio's interval lies wholly outside "
        "[1/band, band]",
    )
    overall_band: float = Field(
        default=1.5,
        gt=1,
        description="overall: an alert when the raw ratio's interval lies wholly outside "
        "[1/overall_band, overall_band]",
    )
    confidence: float = Field(default=0.99, gt=0, lt=1)
    min_events: int = Field(default=20, ge=1)
    min_group_size: int = Field(default=50, ge=1)


class EstimateSettings(_Model):
    """The label-free (confidence-based) performance estimate."""

    thresholds: list[float] = Field(
        default_factory=list,
        description="the thresholds estimated at: not configured here but taken from the "
        "champion's tiers (its training config) and the policy's operating threshold "
        "(`with_thresholds`), so they are written in one place",
    )
    replicates: int = Field(default=200, ge=20)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    min_group_size: int = Field(default=50, ge=1)
    seed: int = 0
    reference_correction: bool = Field(
        default=True,
        description="shift FPR/FNR by the labelled reference's realised − label-free "
        "difference per group and threshold, with its uncertainty in the interval",
    )
    auc_correction: Literal["none", "shift", "widen", "pooled"] = Field(
        default="none",
        description="what the reference's realised − label-free AUC does to the AUC estimate "
        "(fairness.monitoring.bias.ReferenceBias.auc_adjustment): none; shift (point and "
        "interval by the group's own shift); widen (point unmoved, interval widened by the "
        "shift's excess over its noise); pooled (shift shrunk towards the overall shift by "
        "empirical Bayes across groups)",
    )

    @model_validator(mode="after")
    def _thresholds(self) -> EstimateSettings:
        t = self.thresholds
        if any(not 0 < x < 1 for x in t) or any(a >= b for a, b in pairwise(t)):
            raise ValueError("thresholds must be strictly increasing probabilities in (0, 1)")
        return self

    def with_thresholds(self, thresholds: list[float]) -> EstimateSettings:
        """These settings at ``thresholds`` (sorted, duplicates dropped, 0 left out: the
        lowest tier starts at 0 and flags everyone)."""
        chosen = sorted({float(t) for t in thresholds if t > 0})
        return EstimateSettings.model_validate(self.model_dump() | {"thresholds": chosen})


class RealisedSettings(_Model):
    """What a matured cohort must show per group, or an alert."""

    calibration_slope_low: float = Field(default=0.9, gt=0)
    calibration_slope_high: float = Field(default=1.1, gt=0)
    calibration_in_the_large: float = Field(default=0.02, gt=0, lt=1)
    max_auc_error: float = Field(default=0.02, gt=0, lt=1)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    min_group_size: int = Field(default=50, ge=1)

    @model_validator(mode="after")
    def _slope_band(self) -> RealisedSettings:
        if self.calibration_slope_low >= self.calibration_slope_high:
            raise ValueError("calibration_slope_low must be below calibration_slope_high")
        return self


class FeedbackSettings(_Model):
    """The feedback-loop indicator: label rates of listed vs comparable unlisted persons."""

    bands: int = Field(default=10, ge=2)
    min_listed: int = Field(default=30, ge=1)
    min_rise: float = Field(default=1.2, gt=1)
    confidence: float = Field(default=0.95, gt=0, lt=1)


class OutcomeSettings(_Model):
    """Which decisions belong to a matured cohort, and when a rate is shown."""

    decision_window_days: int = Field(default=92, ge=1)
    acted: list[str] = Field(default_factory=lambda: ["contacted", "referred"], min_length=1)
    min_count: int = Field(default=10, ge=1)


class MonitoringConfig(_Model):
    """The whole file: the group columns watched and the parts' settings."""

    config_version: str
    group_columns: list[str] = Field(default_factory=list)
    unit_column: str = "region"
    drift: DriftSettings = Field(default_factory=DriftSettings)
    rates: RateSettings = Field(default_factory=RateSettings)
    estimate: EstimateSettings = Field(default_factory=EstimateSettings)
    realised: RealisedSettings = Field(default_factory=RealisedSettings)
    feedback: FeedbackSettings = Field(default_factory=FeedbackSettings)
    outcomes: OutcomeSettings = Field(default_factory=OutcomeSettings)
    places: PlacesMonitoringSettings = Field(default_factory=PlacesMonitoringSettings)


def load_monitoring_config(path: Path | None = None) -> MonitoringConfig:
    """Read ``monitoring.yaml`` (default: found by `riskcast.configio.find_config`)."""
    return load_yaml_model(
        MonitoringConfig, path or find_config(MONITORING_FILE), "monitoring configuration"
    )
