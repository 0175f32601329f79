"""The fairness policy (``configs/fairness.yaml``) as typed pydantic models; unknown keys refused.

`load_policy(path=None)` reads it through `riskcast.configio` (errors name the field);
`band_expression(attr)` / `group_columns(frame, policy)` turn the raw protected columns of a
frame into the audited group labels (age banded, intersections joined with `` × ``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from fairness.validation import require_columns
from riskcast.configio import find_config, load_yaml_model
from riskcast.errors import InputError
from riskcast.names import PERSON_MODEL

MODEL_NAME = PERSON_MODEL  # the registered model the gate guards by default (old name kept)

POLICY_FILE = "fairness.yaml"
INTERSECTION_SEP = " × "
MISSING_GROUP = "(missing)"
MetricName = Literal["fpr", "fnr", "selection_rate", "ppv", "calibration_gap", "auc"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProtectedAttribute(_Model):
    """One protected attribute: the frame column, optional banding, the reference group."""

    name: str
    column: str
    bands: list[float] | None = Field(
        default=None, description="increasing lower edges; values below the first form a band"
    )
    reference: str | None = Field(default=None, description="null = the largest group")

    @model_validator(mode="after")
    def _bands_increase(self) -> ProtectedAttribute:
        pairs = zip(self.bands or [], (self.bands or [])[1:], strict=False)
        if self.bands is not None and (not self.bands or any(lo >= hi for lo, hi in pairs)):
            raise ValueError("bands must be a non-empty increasing list of lower edges")
        return self

    def band_labels(self) -> list[str]:
        if self.bands is None:
            return []
        edges = [_fmt(b) for b in self.bands]
        labels = [f"<{edges[0]}"]
        for lo, hi in zip(self.bands, self.bands[1:], strict=False):
            labels.append(f"{_fmt(lo)}-{_fmt(hi - 1)}")
        labels.append(f"{edges[-1]}+")
        return labels


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


class MetricTolerance(_Model):
    """A disparity tolerance versus the reference group; binding metrics can fail the gate."""

    name: MetricName
    max_difference: float | None = Field(default=None, ge=0)
    max_ratio: float | None = Field(default=None, ge=1)
    binding: bool = False


class Bootstrap(_Model):
    n_boot: int = Field(default=300, ge=0)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    seed: int = 0


class GateTolerances(_Model):
    """How a candidate is compared with the current champion."""

    max_auc_drop: float = Field(default=0.01, ge=0)
    max_ece: float = Field(default=0.05, gt=0)
    max_disparity_increase: float = Field(default=0.02, ge=0)
    require_sufficient_evidence: bool = True


AppealCategory = Literal[
    "violence", "bullying", "corruption", "utilities", "drugs", "alcohol", "noise", "other"
]  # the contract's appeal categories (features.contract.schema.APPEAL_CATEGORY)


DEFAULT_APPEALS: tuple[AppealCategory, ...] = ("violence", "alcohol", "noise")


class PlacesGate(_Model):
    """The places challenger versus the champion, on paired bootstrap intervals over weeks."""

    min_pai_ratio: float = Field(default=0.95, gt=0)
    max_deviance_ratio: float = Field(default=1.02, gt=0)
    min_weeks: int = Field(default=8, ge=2)
    require_sufficient_evidence: bool = True


class PlacesExposure(_Model):
    """Exposure by district: flagged-area share against incident share."""

    max_ratio: float = Field(default=1.5, gt=1)
    min_flagged_share: float = Field(default=0.02, ge=0, lt=1)


class PlacesFeedback(_Model):
    """The feedback-loop check: registrations against citizens' appeals, before/after flagging."""

    appeal_categories: list[AppealCategory] = Field(
        default_factory=lambda: list(DEFAULT_APPEALS), min_length=1
    )
    lookback_weeks: int = Field(default=26, ge=4)
    min_weeks_before: int = Field(default=8, ge=1)
    min_count: int = Field(default=20, ge=1)
    min_registration_rise: float = Field(default=1.2, gt=1)
    max_appeal_rise: float = Field(default=1.0, gt=0)
    confidence: float = Field(default=0.95, gt=0, lt=1)


class PlacesPolicy(_Model):
    """The ``places`` section: the gate, exposure and feedback-loop rules of `fairness.places`."""

    rationale: str = ""
    area_share: float = Field(default=0.05, gt=0, le=0.5)
    gate: PlacesGate = PlacesGate()
    bootstrap: Bootstrap = Bootstrap(n_boot=1000, confidence=0.95, seed=0)
    exposure: PlacesExposure = PlacesExposure()
    feedback: PlacesFeedback = PlacesFeedback()


class FairnessPolicy(_Model):
    policy_version: str
    rationale: str
    protected: list[ProtectedAttribute]
    intersections: list[list[str]] = []
    min_group_size: int = Field(default=50, ge=1)
    threshold: float
    capacities: list[float] = [5, 10, 20]
    bootstrap: Bootstrap = Bootstrap()
    metrics: list[MetricTolerance]
    gate: GateTolerances = GateTolerances()
    places: PlacesPolicy | None = None  # the map-cell model's rules (None: no places gate)

    @model_validator(mode="after")
    def _consistent(self) -> FairnessPolicy:
        names = [p.name for p in self.protected]
        if len(set(names)) != len(names):
            raise ValueError("protected attribute names must be unique")
        for combo in self.intersections:
            unknown = [c for c in combo if c not in names]
            if len(combo) < 2 or unknown:
                raise ValueError(
                    f"intersection {combo} must name >= 2 protected attributes"
                    + (f" (unknown: {', '.join(unknown)})" if unknown else "")
                )
        if any(not 0 < c <= 100 for c in self.capacities):
            raise ValueError("capacities are percentages in (0, 100]")
        return self

    def attribute(self, name: str) -> ProtectedAttribute:
        for p in self.protected:
            if p.name == name:
                return p
        raise InputError(f"fairness policy has no protected attribute {name!r}")

    def tolerance(self, metric: str) -> MetricTolerance | None:
        return next((m for m in self.metrics if m.name == metric), None)


def load_policy(path: Path | None = None) -> FairnessPolicy:
    """The fairness policy from ``path`` or the configured ``fairness.yaml``."""
    return load_yaml_model(FairnessPolicy, path or find_config(POLICY_FILE), "fairness policy")


def band_expression(attr: ProtectedAttribute) -> pl.Expr:
    """The group label of ``attr`` as a string expression (banded when ``bands`` is set)."""
    col = pl.col(attr.column)
    if attr.bands is None:
        expr = col.cast(pl.String)
    else:
        labels = attr.band_labels()
        expr = pl.lit(labels[0])
        for edge, label in zip(attr.bands, labels[1:], strict=True):
            expr = pl.when(col.cast(pl.Float64) >= edge).then(pl.lit(label)).otherwise(expr)
        expr = pl.when(col.is_null()).then(pl.lit(None, pl.String)).otherwise(expr)
    return expr.fill_null(MISSING_GROUP).alias(attr.name)


def group_columns(frame: pl.DataFrame, policy: FairnessPolicy) -> pl.DataFrame:
    """One string column per protected attribute and per intersection (``a × b``)."""
    require_columns(
        frame,
        sorted({p.column for p in policy.protected}),
        what="the audit frame lacks protected column(s)",
    )
    groups = frame.select(band_expression(p) for p in policy.protected)
    combos = [
        pl.concat_str([pl.col(c) for c in combo], separator=INTERSECTION_SEP).alias(
            intersection_name(combo)
        )
        for combo in policy.intersections
    ]
    return groups.with_columns(combos) if combos else groups


def intersection_name(combo: list[str]) -> str:
    return INTERSECTION_SEP.join(combo)
