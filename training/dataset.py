"""Training sets: a stack of snapshots, features from the Step 1 builder joined to labels.

`build_dataset` reads the store (an edge); `dataset_digest` and `label_column` are pure.
Snapshots whose label window is not fully observed by the last delivery are refused with a
message naming them (never silently kept: their labels would be too low).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from features.errors import ConfigError, InputError
from features.frames.builder import Population, collect_features
from features.frames.definitions import FeatureSpec
from features.store.offline import OfflineStore
from training.labels import LabelDefinition, labels_for, unobserved_windows

LABEL = "label"
KEYS = ("person_id", "as_of")


@dataclass(frozen=True)
class Dataset:
    """Rows (person, as_of) with keys, the model inputs, the protected (audit) features and
    ``label`` (Int8 0/1), sorted by as_of then person_id."""

    frame: pl.DataFrame
    features: list[str]
    protected: list[str]
    label_name: str
    horizon_days: int
    spec_hash: str

    @property
    def digest(self) -> str:
        return dataset_digest(self.frame)

    def x(self, frame: pl.DataFrame | None = None) -> pl.DataFrame:
        return (self.frame if frame is None else frame).select(self.features)

    def y(self, frame: pl.DataFrame | None = None) -> np.ndarray:
        return label_column(self.frame if frame is None else frame)

    def summary(self) -> pl.DataFrame:
        """Rows and label rate per snapshot."""
        return (
            self.frame.group_by("as_of")
            .agg(pl.len().alias("rows"), pl.col(LABEL).mean().alias("label_rate"))
            .sort("as_of")
        )


def label_column(frame: pl.DataFrame) -> np.ndarray:
    return frame[LABEL].cast(pl.Int8).to_numpy().astype(np.int64)


def dataset_digest(frame: pl.DataFrame) -> str:
    """A content digest: the schema and every row (order-independent), sha256, 16 hex."""
    h = hashlib.sha256()
    h.update(repr([(n, str(t)) for n, t in frame.schema.items()]).encode())
    h.update(str(frame.height).encode())
    if frame.height:
        rows = np.sort(frame.hash_rows(seed=0).to_numpy())
        h.update(rows.tobytes())
    return h.hexdigest()[:16]


def check_observed(store: OfflineStore, dates: Sequence[date], label: LabelDefinition) -> None:
    """Refuse snapshots whose label window is not fully observed, naming every one."""
    problems = unobserved_windows(store, list(dates), label)
    if problems:
        raise ConfigError(
            "refusing snapshots whose label window is not fully observed (end the test period "
            "earlier or ingest a later delivery): " + "; ".join(problems)
        )


def build_dataset(
    store: OfflineStore,
    spec: FeatureSpec,
    dates: Sequence[date],
    population: Population | str,
    label: LabelDefinition,
    label_name: str,
) -> Dataset:
    """Features of ``spec`` as of every date for ``population``, with the label joined."""
    dates = sorted(set(dates))
    check_observed(store, dates, label)
    features = collect_features(store, spec, dates, population)
    keys = features.select(*KEYS).lazy()
    labels = labels_for(store, keys, label).collect()
    frame = features.join(labels.select(*KEYS, LABEL), on=list(KEYS), how="left")
    missing = frame[LABEL].null_count()
    if missing:
        raise InputError(f"{missing} feature rows got no label (persons unknown to the store)")
    frame = frame.with_columns(pl.col(LABEL).cast(pl.Int8)).sort("as_of", "person_id")
    empty = sorted(set(dates) - set(frame["as_of"].unique().to_list()))
    if empty:
        raise InputError(f"population {population} is empty as of {', '.join(map(str, empty))}")
    return Dataset(
        frame=frame,
        features=spec.model_inputs(),
        protected=spec.protected_features(),
        label_name=label_name,
        horizon_days=label.horizon_days,
        spec_hash=spec.spec_hash(),
    )
