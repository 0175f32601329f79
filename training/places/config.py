"""``configs/places_training.yaml`` as typed pydantic models (``extra="forbid"``).

The origins are not dates in the file: they follow from the store (the last origin is the last
Sunday whose forecast week 8 has ended by the store's last extraction), so the same file works
on any delivery. See the YAML file for the meaning of each entry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

import optuna
from pydantic import BaseModel, ConfigDict, Field, model_validator

from riskcast.configio import find_config, load_yaml_model
from riskcast.names import PLACES_MODEL
from training.tuning import TunedParameters

PLACES_TRAINING_FILE = "places_training.yaml"
Objective = Literal["poisson", "tweedie"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OriginsConfig(_Strict):
    test_weeks: int = Field(default=26, ge=1, description="weekly out-of-time test origins")
    train_weeks: int = Field(default=104, ge=4, description="span of training origins")
    train_every_weeks: int = Field(default=2, ge=1, le=8)


class PlacesFolds(_Strict):
    n_folds: int = Field(default=3, ge=1)
    valid_origins: int = Field(default=6, ge=1)


def _both_objectives() -> list[Objective]:
    return ["poisson", "tweedie"]


class PlacesSearch(TunedParameters):
    """What Optuna searches; every trial is scored by mean Poisson deviance over the folds."""

    objectives: list[Objective] = Field(default_factory=_both_objectives, min_length=1)
    num_boost_round: int = Field(default=250, gt=0)
    early_stopping_rounds: int = Field(default=30, gt=0)
    startup_trials: int = Field(default=8, ge=1)
    pruning_warmup_trials: int = Field(default=4, ge=0)
    max_train_rows: int | None = Field(default=100_000, gt=0)

    @model_validator(mode="after")
    def _objective_not_a_parameter(self) -> Self:
        if "objective" in self.fixed or "objective" in self.params:
            raise ValueError("the objective is chosen by `objectives`, not a parameter")
        return self

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        """One trial's parameters; ``tweedie_variance_power`` only when the objective is
        tweedie (a parameter the objective ignores would only add noise to the search)."""
        objective = (
            trial.suggest_categorical("objective", list(self.objectives))
            if len(self.objectives) > 1
            else self.objectives[0]
        )
        out: dict[str, Any] = dict(self.fixed)
        out["objective"] = objective
        for name, rng in self.params.items():
            if name == "tweedie_variance_power" and objective != "tweedie":
                continue
            out[name] = rng.suggest(trial, name)
        return out


class PlacesBaselinesConfig(_Strict):
    kde_bandwidths_km: list[float] = Field(
        default_factory=lambda: [0.3, 0.5, 0.8, 1.2], min_length=1
    )
    kde_weeks: list[int] = Field(default_factory=lambda: [4, 13, 26, 52], min_length=1)
    hawkes_taus_weeks: list[float] = Field(
        default_factory=lambda: [1.0, 2.0, 4.0, 8.0], min_length=1
    )


class IntervalsConfig(_Strict):
    level: float = Field(default=0.8, gt=0.0, lt=1.0)


class PlacesTrainingConfig(_Strict):
    model_name: str = Field(default=PLACES_MODEL, pattern=r"^[A-Za-z0-9][\w.-]*$")
    experiment: str = "riskcast-places"
    horizons: int = Field(default=8, ge=1, le=26)
    origins: OriginsConfig = Field(default_factory=OriginsConfig)
    folds: PlacesFolds = Field(default_factory=PlacesFolds)
    search: PlacesSearch
    trials: int = Field(default=30, ge=1)
    seed: int = 0
    num_threads: int = Field(default=0, ge=0)
    baselines: PlacesBaselinesConfig = Field(default_factory=PlacesBaselinesConfig)
    intervals: IntervalsConfig = Field(default_factory=IntervalsConfig)
    reasons: int = Field(default=3, ge=1, le=10)
    bootstrap: int = Field(default=2000, ge=100)
    truth_dir: Path | None = None


def load_places_training_config(path: Path | None = None) -> tuple[PlacesTrainingConfig, Path]:
    """The config at ``path`` (default: ``places_training.yaml`` found the usual way) and
    where it was read from; a `ConfigError` names the file and each refused field."""
    source = path or find_config(PLACES_TRAINING_FILE)
    return load_yaml_model(PlacesTrainingConfig, source, "places training config"), source
