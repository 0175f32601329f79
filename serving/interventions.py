"""The intervention catalogue (`configs/interventions.yaml`): support measures for needs, and
the rules (`Suggestions`) that decide when a need is present and material enough to suggest one."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.frames.definitions import Domain, Kind
from riskcast.configio import find_config, load_yaml_model
from riskcast.errors import ConfigError
from training.model import FeatureInfo

INTERVENTIONS_FILE = "interventions.yaml"


class Measure(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1)
    provider: str = Field(min_length=1)
    description: str = Field(min_length=1)
    domains: list[Domain] = Field(default_factory=list)
    features: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _targets(self) -> Self:
        if not self.domains and not self.features:
            raise ValueError(f"measure {self.id!r} lists neither domains nor features")
        return self


class Suggestions(BaseModel):
    """When a person page suggests a measure (see `configs/interventions.yaml` for why)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    material_contribution: float = Field(
        default=0.05,
        ge=0.0,
        description="the least contribution (log-odds) of a need for it to lead to a measure",
    )
    max_measures: int = Field(default=3, ge=1, le=10, description="at most this many measures")
    present_at_or_below: dict[str, float] = Field(
        default_factory=dict,
        description="needs whose low values indicate them (direction -1): present at or below "
        "the value given; a direction -1 feature not listed here is never a need",
    )

    def need_present(self, feature: FeatureInfo, value: float | None) -> bool:
        """Whether the register fact shows the need: never a missing value; a count, amount,
        flag or trend above zero for features whose higher values raise the risk; at or below
        the configured level for the few whose lower values do."""
        if value is None or value != value:  # NaN: not recorded
            return False
        if feature.direction < 0:
            level = self.present_at_or_below.get(feature.name)
            return level is not None and value <= level
        return value > 0


class InterventionCatalogue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    measures: list[Measure] = Field(min_length=1)
    suggestions: Suggestions = Field(default_factory=Suggestions)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        ids = [m.id for m in self.measures]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"measure ids must be unique: {dupes}")
        return self

    def ids(self) -> set[str]:
        return {m.id for m in self.measures}

    def name_of(self, measure_id: str | None) -> str | None:
        """The measure's name for people (its id if the catalogue no longer lists it)."""
        if measure_id is None:
            return None
        return next((m.name for m in self.measures if m.id == measure_id), measure_id)

    def check_features(self, features: Iterable[FeatureInfo], source: str = "") -> None:
        """Every listed feature must be a dynamic model input (a need support can address)."""
        kinds = {f.name: f.kind for f in features}
        for m in self.measures:
            for name in m.features:
                if name not in kinds:
                    continue  # a need the current model does not use: harmless
                if kinds[name] != Kind.DYNAMIC.value:
                    raise ConfigError(
                        f"{source or INTERVENTIONS_FILE}: measure {m.id!r} lists {name!r}, "
                        "a static feature; only dynamic needs map to support measures"
                    )

    def for_need(self, feature: FeatureInfo) -> list[Measure]:
        """The measures that fit one dynamic need (none for static history)."""
        if feature.kind != Kind.DYNAMIC.value:
            return []
        return [
            m for m in self.measures if feature.name in m.features or feature.domain in m.domains
        ]


def load_interventions(path: Path | None = None) -> InterventionCatalogue:
    path = path or find_config(INTERVENTIONS_FILE)
    return load_yaml_model(InterventionCatalogue, path, "intervention catalogue")
