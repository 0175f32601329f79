"""Steps ``load`` (read the training rows from the store) and ``prepare`` (what the model may
use: inputs without protected attributes, monotone constraints, threads, scope)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import polars as pl

from features.contract import PROTECTED_ATTRIBUTES
from features.frames.definitions import Aggregation, FeatureSpec
from features.frames.scope import PopulationScope
from features.store.offline import OfflineStore
from riskcast.errors import ConfigError
from training.dataset import Dataset, add_extra_inputs, build_dataset
from training.model import FeatureInfo
from training.splits import select_dates
from training.steps.plan import PERIODS, TrainingPlan

EXTRA_DOMAIN = "extra_inputs"
"""The domain of model inputs joined from the config's ``extra_inputs`` table."""


@dataclass(frozen=True)
class TrainingData:
    """The dataset and what follows from it for fitting: the declared population of validity,
    monotone constraints per input and the LightGBM thread count."""

    dataset: Dataset
    scope: PopulationScope
    monotone: dict[str, int]
    threads: int

    def rows(self, dates: Sequence[date]) -> pl.DataFrame:
        """The dataset's rows of these snapshots."""
        return select_dates(self.dataset.frame, list(dates))

    def period_rows(self, plan: TrainingPlan) -> dict[str, pl.DataFrame]:
        """Rows of each period (tune, calibrate, test)."""
        return {p: self.rows(plan.split.dates(p)) for p in PERIODS}


def monotone_constraints(spec: FeatureSpec) -> dict[str, int]:
    """+1 / -1 per model input from the feature metadata (0 = unconstrained)."""
    return {f.name: int(f.direction) for f in spec.features if not f.protected}


def feature_infos(spec: FeatureSpec, extra: Sequence[str] = ()) -> list[FeatureInfo]:
    """Metadata of the model inputs: the spec's, then the ``extra`` inputs (unconstrained)."""
    return [
        FeatureInfo(f.name, f.domain.value, f.kind.value, int(f.direction), f.description)
        for f in spec.features
        if not f.protected
    ] + [FeatureInfo(n, EXTRA_DOMAIN, "static", 0, "extra input (extra_inputs)") for n in extra]


def check_no_protected(features: list[str], spec: FeatureSpec) -> None:
    """Refuse (loudly) if a protected attribute or protected feature is among model inputs."""
    leaked = sorted(set(features) & (set(PROTECTED_ATTRIBUTES) | set(spec.protected_features())))
    if leaked:
        raise ConfigError(f"protected attributes must never be model inputs: {', '.join(leaked)}")


def count_features(spec: FeatureSpec) -> list[str]:
    """Inputs that are counts or sums (log-transformed by the logistic baseline)."""
    kinds = {Aggregation.COUNT, Aggregation.COUNT_DISTINCT, Aggregation.SUM}
    return [f.name for f in spec.features if not f.protected and f.aggregation in kinds]


def effective_threads(configured: int, rows: int) -> int:
    """LightGBM threads: as configured, else one for small sets or when the machine is busy
    (OpenMP's spinning threads on oversubscribed cores run several times slower than one
    thread), else every core."""
    if configured > 0:
        return configured
    cores = os.cpu_count() or 1
    busy = os.getloadavg()[0] > cores - 0.5 if hasattr(os, "getloadavg") else False
    return 1 if rows < 200_000 or busy else cores


def load_dataset(store: OfflineStore, plan: TrainingPlan) -> Dataset:
    """Read the rows of every planned snapshot from the store, with labels, and join the
    config's ``extra_inputs`` (the step's I/O: the store and the extra table)."""
    cfg = plan.cfg
    ds = build_dataset(
        store,
        plan.spec,
        plan.split.used,
        cfg.population,
        plan.resolved.label,
        cfg.label,
        cfg.min_age,
    )
    return add_extra_inputs(ds, cfg.extra_inputs)


def prepare_training_data(plan: TrainingPlan, dataset: Dataset) -> TrainingData:
    """Refuse protected inputs; derive the scope, monotone constraints and thread count."""
    cfg = plan.cfg
    check_no_protected(dataset.features, plan.spec)
    return TrainingData(
        dataset=dataset,
        scope=PopulationScope.of(cfg.population, plan.spec, cfg.min_age),
        monotone=monotone_constraints(plan.spec),
        threads=effective_threads(cfg.num_threads, dataset.frame.height),
    )
