"""Step ``plan``: what one training run will do, decided from the configuration alone."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from features.frames.definitions import FeatureSpec
from training.config import ResolvedConfig, TrainingConfig
from training.splits import FoldDates, PeriodSplit, rolling_origin_folds, split_periods

PERIODS = ("tune", "calibrate", "test")


@dataclass(frozen=True)
class TrainingPlan:
    """The resolved config, the feature spec, the period split, the tuning folds and the
    number of trials: every later step reads its settings from here."""

    resolved: ResolvedConfig
    spec: FeatureSpec
    split: PeriodSplit
    folds: tuple[FoldDates, ...]
    trials: int

    @property
    def cfg(self) -> TrainingConfig:
        return self.resolved.training


def plan_training(
    resolved: ResolvedConfig, spec: FeatureSpec, trials: int | None = None
) -> TrainingPlan:
    """Split the configured snapshots into periods (with a gap of one horizon) and the tuning
    period into rolling-origin folds; ``trials`` overrides the configured number."""
    cfg = resolved.training
    split = split_periods(cfg.snapshots.dates(), cfg.periods, resolved.gap_days)
    folds = rolling_origin_folds(split.tune, cfg.folds, resolved.gap_days)
    return TrainingPlan(resolved, spec, split, tuple(folds), trials or cfg.trials)


def config_digest(resolved: ResolvedConfig) -> str:
    """A short digest of the training config and label (names the Optuna study, so that a
    changed config never resumes another config's study)."""
    raw = {
        "training": resolved.training.model_dump(mode="json"),
        "label": resolved.label.model_dump(),
    }
    return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:16]
