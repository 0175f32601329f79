"""``configs/training.yaml`` as typed pydantic models (``extra="forbid"``), and where it is found.

Errors are `ConfigError`s naming the file and the field. See the YAML file for the meaning of
each entry; `load_training_config` also resolves the label definition from ``labels.yaml``.
"""

from __future__ import annotations

import calendar
from datetime import date
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.frames.builder import Population
from riskcast.configio import find_config, read_yaml, validate_model
from riskcast.errors import ConfigError
from riskcast.names import PERSON_MODEL
from training.labels import LabelDefinition, load_label_config
from training.model import Tier
from training.tuning import SearchSpace

TRAINING_FILE = "training.yaml"
LABELS_FILE = "labels.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DateRange(_Strict):
    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end


class SnapshotSchedule(DateRange):
    every_months: int = Field(default=3, gt=0, le=12)

    def dates(self) -> list[date]:
        """Month ends from ``start``'s month to ``end``, every ``every_months`` months."""
        out: list[date] = []
        year, month = self.start.year, self.start.month
        while True:
            day = date(year, month, calendar.monthrange(year, month)[1])
            if day > self.end:
                return out
            if day >= self.start:
                out.append(day)
            month += self.every_months
            year, month = year + (month - 1) // 12, (month - 1) % 12 + 1


class Periods(_Strict):
    tune: DateRange
    calibrate: DateRange
    test: DateRange


class FoldsConfig(_Strict):
    n_folds: int = Field(default=3, ge=1)
    valid_snapshots: int = Field(default=2, ge=1)
    min_train_snapshots: int = Field(default=2, ge=1)


class CalibrationConfig(_Strict):
    method: Literal["auto", "isotonic", "platt"] = "auto"


class TierConfig(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    min_probability: float = Field(ge=0.0, le=1.0)


class BaselineConfig(_Strict):
    points_max_factors: int = Field(default=6, ge=1, le=6)
    points_features: list[str] | None = None


class EvaluationConfig(_Strict):
    bootstrap: int = Field(default=200, ge=10)
    shap_rows: int = Field(default=2000, ge=100)


DEFAULT_MIN_AGE = 14
"""The age of criminal responsibility for the gravest offences in the contract's jurisdiction
(and the lowest in most of Europe): below it a "new criminal case" is not the outcome the model
forecasts, and support for children is the task of child-protection services, not of police
prevention lists. Part of the population of validity every model version declares."""


class TrainingConfig(_Strict):
    label: str
    population: Population = Population.WITH_RECORD
    min_age: int | None = Field(
        default=DEFAULT_MIN_AGE,
        ge=0,
        le=120,
        description="persons younger than this at the as-of date are outside the model's "
        "population: never trained on, audited on nor scored (null: no minimum)",
    )
    snapshots: SnapshotSchedule
    periods: Periods
    gap_days: int | None = Field(default=None, ge=0)
    folds: FoldsConfig = Field(default_factory=FoldsConfig)
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)
    search: SearchSpace
    trials: int = Field(default=30, ge=1)
    seed: int = 0
    num_threads: int = Field(default=0, ge=0)
    tiers: list[TierConfig] = Field(min_length=1)
    baselines: BaselineConfig = Field(default_factory=BaselineConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    model_name: str = Field(default=PERSON_MODEL, pattern=r"^[A-Za-z0-9][\w.-]*$")
    experiment: str = "riskcast-training"
    truth_dir: Path | None = Field(
        default=None,
        description="a truth manifest (or a folder holding truth-manifest.json, as the simulator "
        "writes in OUT_truth/); null = no oracle. Production code never guesses its place",
    )
    extra_inputs: Path | None = Field(
        default=None,
        description="a Parquet table keyed by person_id (and as_of, if it has one) whose other "
        "numeric columns are joined as extra model inputs (unconstrained); null = none. "
        "Protected attributes are refused; proxies are for the fairness audit to find",
    )

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        cuts = [t.min_probability for t in self.tiers]
        if cuts[0] != 0.0 or cuts != sorted(cuts) or len(set(cuts)) != len(cuts):
            raise ValueError("tiers: min_probability must start at 0 and strictly increase")
        if len({t.name for t in self.tiers}) != len(self.tiers):
            raise ValueError("tiers: names must be unique")
        return self

    def tier_objects(self) -> list[Tier]:
        return [Tier(t.name, t.min_probability) for t in self.tiers]


class ResolvedConfig(BaseModel):
    """The training config with its label definition and where both came from."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    training: TrainingConfig
    label: LabelDefinition
    source: Path
    labels_source: Path

    @property
    def gap_days(self) -> int:
        gap = self.training.gap_days
        return self.label.horizon_days if gap is None else gap


def parse_training_config(raw: object, *, source: str = TRAINING_FILE) -> TrainingConfig:
    """``raw`` (the parsed YAML) as a `TrainingConfig`; a `ConfigError` names ``source`` and
    each refused field."""
    return validate_model(TrainingConfig, raw, source)


def load_training_config(path: Path | None = None, labels: Path | None = None) -> ResolvedConfig:
    """Read ``training.yaml`` (default: found by `riskcast.configio.find_config`) and its label
    from ``labels.yaml`` (default: beside it, else found the same way)."""
    path = path or find_config(TRAINING_FILE)
    training = parse_training_config(read_yaml(path, "training config"), source=str(path))
    if labels is None:
        beside = path.parent / LABELS_FILE
        labels = beside if beside.is_file() else find_config(LABELS_FILE)
    definitions = load_label_config(labels).labels
    if training.label not in definitions:
        raise ConfigError(
            f"{path}: label: {training.label!r} is not defined in {labels} "
            f"(defined: {', '.join(definitions)})"
        )
    return ResolvedConfig(
        training=training, label=definitions[training.label], source=path, labels_source=labels
    )
