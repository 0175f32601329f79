"""Every generative parameter of the register simulator, as a typed pydantic model.

Defaults give a plausible country (see `README.md` for the equations and why each term
exists). A YAML file with any subset of these fields can override them
(`riskcast simulate --config FILE`); unknown fields are refused.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from features.contract.schema import (
    ADMIN_CATEGORY,
    APPEAL_CATEGORY,
    CRIME_CATEGORY,
    CRIME_TYPE,
    EDUCATION,
    GRAVITY,
    STATUS,
)
from features.simulator.codes import REGION_CODES
from riskcast.configio import read_yaml, validate_model


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_keys(name: str, given: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ValueError(f"{name}: unknown keys {unknown}; allowed: {', '.join(allowed)}")


class PropensityConfig(_Model):
    """log u = intercept + effects + sigma * z: the latent, person-level rate multiplier."""

    sigma: float = Field(0.6, gt=0)
    z_clip: float = Field(2.5, gt=0, description="z is truncated: no unboundedly prolific persons")
    persistent_share: float = Field(0.03, ge=0, le=1, description="life-course-persistent group")
    persistent_shift: float = Field(5.5, description="added to log u in the persistent group")
    male: float = 1.1
    rural: float = -0.25
    education: dict[str, float] = {
        "none": 0.7,
        "primary": 0.5,
        "secondary": 0.25,
        "vocational": 0.1,
        "higher": -0.6,
        "unknown": 0.3,
    }
    region: dict[str, float] = {"AST": -0.1, "ALA": 0.1, "SHY": 0.15, "KAR": 0.3}

    @model_validator(mode="after")
    def _keys(self) -> PropensityConfig:
        _check_keys("propensity.education", self.education, EDUCATION)
        _check_keys("propensity.region", self.region, REGION_CODES)
        return self


class PopulationConfig(_Model):
    region_shares: dict[str, float] = {"AST": 0.25, "ALA": 0.35, "SHY": 0.25, "KAR": 0.15}
    male_share: float = Field(0.49, ge=0, le=1)
    min_age: int = Field(12, ge=0, description="youngest age at extraction")
    max_age: int = Field(85, ge=20, le=110)
    age_decline: float = Field(0.02, ge=0, description="yearly decline of the age pyramid")
    education_shares: dict[str, float] = {
        "none": 0.03,
        "primary": 0.09,
        "secondary": 0.36,
        "vocational": 0.24,
        "higher": 0.24,
        "unknown": 0.04,
    }
    ethnicity_shares: dict[str, dict[str, float]] = {
        "AST": {"E1": 0.70, "E2": 0.12, "E3": 0.13, "E4": 0.05},
        "ALA": {"E1": 0.60, "E2": 0.20, "E3": 0.10, "E4": 0.10},
        "SHY": {"E1": 0.65, "E2": 0.25, "E3": 0.05, "E4": 0.05},
        "KAR": {"E1": 0.50, "E2": 0.10, "E3": 0.35, "E4": 0.05},
    }
    missing: dict[str, float] = {
        "district": 0.03,
        "settlement": 0.02,
        "education": 0.03,
        "ethnicity": 0.04,
    }
    propensity: PropensityConfig = PropensityConfig()

    @model_validator(mode="after")
    def _keys(self) -> PopulationConfig:
        _check_keys("population.region_shares", self.region_shares, REGION_CODES)
        _check_keys("population.education_shares", self.education_shares, EDUCATION)
        _check_keys("population.ethnicity_shares", self.ethnicity_shares, REGION_CODES)
        _check_keys(
            "population.missing", self.missing, ("district", "settlement", "education", "ethnicity")
        )
        return self


class StatusConfig(_Model):
    """A monthly Markov chain of social status from age 16; spells are its runs."""

    coverage: float = Field(0.9, ge=0, le=1, description="share of persons in social registers")
    min_age: int = 16
    retirement_age_male: int = 63
    retirement_age_female: int = 61
    leave_monthly: dict[str, float] = {
        "employed": 0.012,
        "unemployed": 0.07,
        "student": 0.02,
        "retired": 0.0,
        "social_assistance": 0.05,
        "homeless": 0.06,
        "unknown": 0.08,
    }
    # Destination weights when leaving a status; homelessness and unemployment grow with log u.
    destinations: dict[str, dict[str, float]] = {
        "employed": {"unemployed": 0.8, "social_assistance": 0.1, "unknown": 0.1},
        "unemployed": {"employed": 0.75, "social_assistance": 0.2, "homeless": 0.05},
        "student": {"employed": 0.65, "unemployed": 0.35},
        "retired": {"retired": 1.0},
        "social_assistance": {"employed": 0.45, "unemployed": 0.5, "homeless": 0.05},
        "homeless": {"unemployed": 0.6, "social_assistance": 0.4},
        "unknown": {"employed": 0.5, "unemployed": 0.5},
    }
    propensity_on_risky: float = Field(
        0.55, description="log-odds shift per unit log u towards unemployment/homelessness"
    )
    record_lag_mean_days: float = 8.0

    @model_validator(mode="after")
    def _keys(self) -> StatusConfig:
        _check_keys("status.leave_monthly", self.leave_monthly, STATUS)
        _check_keys("status.destinations", self.destinations, STATUS)
        for src, dest in self.destinations.items():
            _check_keys(f"status.destinations.{src}", dest, STATUS)
        return self


class LagConfig(_Model):
    """Registration lag in days: same day, short (geometric) or long (lognormal) - heavy-tailed."""

    p_same_day: float = 0.42
    p_short: float = 0.30
    short_mean_days: float = 6.0
    long_median_days: float = 75.0
    long_sigma: float = 1.3
    max_days: int = 3650


class DetectionBias(_Model):
    """Offences of low gravity by `ethnicity` in `region` are detected `factor` times as often."""

    region: str
    ethnicity: str
    factor: float = Field(gt=0)


class PracticeChange(_Model):
    """From `from_date` on, the police of `region` register offences `record_rate_multiplier`
    times as often (a registration-practice change, issue 13 section 5's injected drift).

    It multiplies the detection probability of the gravities in `crime.biased_gravities`
    (capped at 0.98 like every detection probability) for offences committed by residents of
    the region on or after the date. Offending is untouched: those gravities never lead to
    prison, and every offence consumes the same random numbers whatever its detection, so
    only what the register records changes (and the labels, which are defined on it).
    `from_date` must be the first of a month: p_true's future part is accumulated per month.
    """

    region: str
    from_date: date
    record_rate_multiplier: float = Field(gt=0)

    @model_validator(mode="after")
    def _check(self) -> PracticeChange:
        _check_keys("crime.practice_changes.region", {self.region: 0}, REGION_CODES)
        if self.from_date.day != 1:
            raise ValueError("crime.practice_changes.from_date must be the first of a month")
        return self


class CrimeConfig(_Model):
    monthly_rate: float = Field(1.5e-4, gt=0, description="c0: offences per month at u=1, peak")
    min_age: int = 14
    age_peak: float = Field(21.0, description="age-crime curve: log-normal bump in (age - 13)")
    age_spread: float = 1.4
    status_multiplier: dict[str, float] = {
        "employed": 0.75,
        "unemployed": 1.5,
        "student": 0.8,
        "retired": 0.6,
        "social_assistance": 1.3,
        "homeless": 2.6,
        "unknown": 1.1,
    }
    category_weights: dict[str, float] = {
        "violent": 0.22,
        "property": 0.36,
        "drugs": 0.10,
        "public_order": 0.10,
        "sexual": 0.02,
        "economic": 0.05,
        "traffic": 0.07,
        "other": 0.08,
    }
    violent_excitation: float = Field(
        1.6, ge=0, description="gamma: violent hazard x (1 + gamma * E), E = decayed admin count"
    )
    lag: LagConfig = LagConfig()
    co_offending: float = Field(0.06, ge=0, le=0.5, description="share of offences paired")
    detection_bias: list[DetectionBias] = [
        DetectionBias(region="ALA", ethnicity="E2", factor=1.6),
        DetectionBias(region="SHY", ethnicity="E2", factor=1.4),
    ]
    biased_gravities: list[str] = ["misdemeanour", "minor"]
    practice_changes: list[PracticeChange] = Field(
        default_factory=list,
        description="registration-practice changes from a date (default: none)",
    )

    @model_validator(mode="after")
    def _keys(self) -> CrimeConfig:
        _check_keys("crime.status_multiplier", self.status_multiplier, STATUS)
        _check_keys("crime.category_weights", self.category_weights, CRIME_CATEGORY)
        for b in self.detection_bias:
            _check_keys("crime.detection_bias.region", {b.region: 0}, REGION_CODES)
        _check_keys("crime.biased_gravities", dict.fromkeys(self.biased_gravities, 0), GRAVITY)
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Leave `practice_changes` out while empty, so the `simulation.json` of a run without
        them stays byte-identical to what it was before the option existed."""
        data: dict[str, Any] = handler(self)
        if not self.practice_changes:
            data.pop("practice_changes", None)
        return data


class JusticeConfig(_Model):
    """What happens to a registered case: outcome, timing, sentence, custody and release."""

    p_terminated_exonerating: float = 0.10
    p_terminated_other: float = 0.16
    p_acquitted: float = 0.03
    termination_median_days: float = 90.0
    referral_median_days: float = 60.0
    verdict_median_days: float = 75.0
    imprisonment: dict[str, float] = {
        "misdemeanour": 0.0,
        "minor": 0.0,
        "medium": 0.3,
        "grave": 0.7,
        "especially_grave": 0.95,
    }
    prison_months_median: dict[str, float] = {
        "misdemeanour": 6.0,
        "minor": 12.0,
        "medium": 24.0,
        "grave": 54.0,
        "especially_grave": 120.0,
    }
    parole_share: float = 0.3
    fine_share_non_custodial: float = 0.45
    probation_share_non_custodial: float = 0.35
    post_release_boost: float = Field(3.0, description="A: hazard x (1 + A exp(-t/tau))")
    post_release_tau_days: float = 240.0
    initial_custody_scale: float = Field(3e-4, description="P(in custody at start) = min(.1, s*u)")

    @model_validator(mode="after")
    def _keys(self) -> JusticeConfig:
        _check_keys("justice.imprisonment", self.imprisonment, GRAVITY)
        _check_keys("justice.prison_months_median", self.prison_months_median, GRAVITY)
        return self


class AdminConfig(_Model):
    monthly_rate: float = Field(0.002, description="non-traffic offences per month at u=1")
    traffic_monthly_rate: float = 0.0035
    propensity_exponent: float = 0.5
    min_age: int = 16
    age_peak: float = 25.0
    age_spread: float = 1.1
    category_weights: dict[str, float] = {
        "public_order": 0.30,
        "alcohol": 0.26,
        "domestic": 0.16,
        "drugs": 0.06,
        "property": 0.12,
        "other": 0.10,
    }
    escalating: list[str] = ["public_order", "alcohol", "domestic"]
    excitation_tau_months: float = 3.0
    excitation_cap: float = Field(3.0, gt=0, description="E is capped: the process stays stable")
    self_excitation: float = 0.3
    expunge_share: float = Field(0.05, description="share of records later expunged")

    @model_validator(mode="after")
    def _keys(self) -> AdminConfig:
        _check_keys("admin.category_weights", self.category_weights, ADMIN_CATEGORY)
        _check_keys("admin.escalating", dict.fromkeys(self.escalating, 0), ADMIN_CATEGORY)
        return self


class ObligationConfig(_Model):
    alimony_yearly: float = Field(0.012, description="enforcement episodes per man 22-55 at u=1")
    other_yearly: float = 0.01
    annul_share: float = 0.01
    # Logistic model of paying on time: b0 - b_u * log u + b_status[status at imposition].
    pay_intercept: float = 1.2
    pay_propensity: float = 0.7
    pay_status: dict[str, float] = {
        "employed": 0.6,
        "unemployed": -0.8,
        "homeless": -2.0,
        "social_assistance": -0.6,
    }

    write_off_years: float | None = Field(
        None,
        gt=0,
        description="an obligation unpaid this long after its due date is written off (closed "
        "as settled on that day); None: never, the stock of old debts ages with the calendar",
    )

    @model_validator(mode="after")
    def _keys(self) -> ObligationConfig:
        _check_keys("obligations.pay_status", self.pay_status, STATUS)
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Leave `write_off_years` out while None: `simulation.json` stays byte-identical."""
        data: dict[str, Any] = handler(self)
        if self.write_off_years is None:
            data.pop("write_off_years", None)
        return data


class PlacesConfig(_Model):
    """Street incidents and appeals (`places.py`, equations in `README.md`)."""

    incidents_per_1k_year: float = 45.0
    appeals_per_1k_year: float = 25.0
    lead_weeks: int = Field(3, ge=0, description="appeals lead incidents by this many weeks")
    latent_phi: float = 0.8
    latent_sigma: float = 0.4
    latent_effect: float = 1.0
    near_repeat_mean: float = Field(0.25, ge=0, lt=1)
    near_repeat_km: float = 0.2
    near_repeat_days: float = 4.0
    hotspots_per_district: int = 4
    hotspot_share: float = Field(0.55, ge=0, le=1, description="of background incidents")
    emerging_share: float = Field(
        0.2, ge=0, lt=1, description="long-run share of background incidents in emerging hotspots"
    )
    emerging_per_district: int = Field(2, ge=1, description="slots, each a sequence of episodes")
    emerging_weeks_min: int = Field(13, ge=2, description="shortest life of an emerging hotspot")
    emerging_weeks_max: int = Field(52, ge=2, description="longest life of an emerging hotspot")
    emerging_gap_weeks: float = Field(26.0, gt=0, description="mean gap before the next one")
    release_incidents: float = Field(
        1.0, ge=0, description="expected extra incidents in a district per release from custody"
    )
    release_days: float = Field(30.0, gt=0, description="mean delay of those incidents")
    truth_years_before: int = Field(
        1, ge=0, le=20, description="truth intensity from this many years before the first as-of"
    )
    truth_cell_mass: float = Field(
        0.99, gt=0, le=1, description="truth keeps the densest cells holding this expected share"
    )
    truth_samples: int = Field(4000, ge=100, description="Monte Carlo points per district part")
    seasonal_amplitude: float = 0.2
    weekend_factor: float = 1.35
    crime_type_weights: dict[str, float] = {
        "street_robbery": 0.10,
        "theft": 0.34,
        "assault": 0.14,
        "hooliganism": 0.15,
        "vehicle": 0.10,
        "drugs": 0.07,
        "other": 0.10,
    }
    appeal_category_weights: dict[str, float] = {
        "violence": 0.12,
        "bullying": 0.06,
        "corruption": 0.05,
        "utilities": 0.25,
        "drugs": 0.08,
        "alcohol": 0.12,
        "noise": 0.17,
        "other": 0.15,
    }
    text_share: float = 0.6
    reclassify_share: float = 0.01
    drop_share: float = 0.005

    @model_validator(mode="after")
    def _keys(self) -> PlacesConfig:
        _check_keys("places.crime_type_weights", self.crime_type_weights, CRIME_TYPE)
        _check_keys("places.appeal_category_weights", self.appeal_category_weights, APPEAL_CATEGORY)
        if self.emerging_weeks_min > self.emerging_weeks_max:
            raise ValueError("places.emerging_weeks_min must not exceed emerging_weeks_max")
        return self


class CorrectionsConfig(_Model):
    """Register errors fixed later (corrections) and records deleted later (drops)."""

    category_error_share: float = 0.02
    fix_median_days: float = 200.0
    double_entry_share: float = 0.01
    double_entry_delete_median_days: float = 120.0
    education_fix_share: float = 0.01


class SimulatorConfig(_Model):
    population: PopulationConfig = PopulationConfig()
    status: StatusConfig = StatusConfig()
    crime: CrimeConfig = CrimeConfig()
    justice: JusticeConfig = JusticeConfig()
    admin: AdminConfig = AdminConfig()
    obligations: ObligationConfig = ObligationConfig()
    places: PlacesConfig = PlacesConfig()
    corrections: CorrectionsConfig = CorrectionsConfig()


def load_config(path: Path) -> SimulatorConfig:
    """Read a YAML override of the defaults; errors name the file and the field."""
    raw = read_yaml(path, "simulator parameters") or {}
    return validate_model(SimulatorConfig, raw, str(path))
