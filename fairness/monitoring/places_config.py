"""The ``places`` section of ``configs/monitoring.yaml``: how the places champion (expected
street-crime counts per map cell and week) is watched after promotion.

Kept apart from `fairness.monitoring.config` so the person model's settings stay as they are;
the rationale of each number is a comment beside it in the YAML file.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class PlacesDriftSettings(BaseModel):
    """The cell features' drift rule (`places_drift`): a window of recent weeks against the
    same weeks a year before, rate ratios with overdispersion, BH across all tests, a band."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_weeks: int = Field(default=8, ge=1, le=26)
    season_lag_weeks: int = Field(default=52, ge=1, le=260)
    ratio_low: float = Field(default=0.8, gt=0)
    ratio_high: float = Field(default=1.25, gt=0)
    fdr: float = Field(default=0.05, gt=0, lt=1)
    min_effective_count: float = Field(default=10.0, ge=0)
    min_between_sd: float = Field(default=0.07, ge=0, le=1)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    # the input whose evidence a group's state reports (`places_drift.group_evidence`)
    evidence_input: str = "count_all_13w"
    exclude: list[str] = Field(
        default_factory=lambda: ["week_sin", "week_cos", "holidays_in_week", "ring"]
    )

    @model_validator(mode="after")
    def _band(self) -> PlacesDriftSettings:
        if not self.ratio_low < 1 < self.ratio_high:
            raise ValueError("the drift band must hold 1: ratio_low < 1 < ratio_high")
        return self


class PlacesMonitoringSettings(BaseModel):
    """Input drift groups, the realised-performance window and the alert bands."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    group_columns: list[str] = Field(default_factory=lambda: ["region", "district"])
    realised_weeks: int = Field(default=8, ge=1, le=104)
    area_share: float = Field(default=0.05, gt=0, le=0.5)
    ratio_low: float = Field(default=0.8, gt=0)
    ratio_high: float = Field(default=1.25, gt=0)
    min_expected: float = Field(default=20.0, ge=0)
    pai_fraction: float = Field(default=0.7, gt=0, le=1)
    min_pai_weeks: int = Field(default=4, ge=1)
    bootstrap: int = Field(default=500, ge=50)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    seed: int = 0
    drift: PlacesDriftSettings = Field(default_factory=PlacesDriftSettings)

    @model_validator(mode="after")
    def _band(self) -> PlacesMonitoringSettings:
        if not self.ratio_low < 1 < self.ratio_high:
            raise ValueError("the ratio band must hold 1: ratio_low < 1 < ratio_high")
        return self
