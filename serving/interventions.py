"""The intervention catalogue (`configs/interventions.yaml`): support measures for needs."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.configio import find_config, load_yaml_model
from features.errors import ConfigError
from features.frames.definitions import Domain, Kind
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


class InterventionCatalogue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    measures: list[Measure] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        ids = [m.id for m in self.measures]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"measure ids must be unique: {dupes}")
        return self

    def ids(self) -> set[str]:
        return {m.id for m in self.measures}

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
