"""Training sets: a stack of snapshots, features from the Step 1 builder joined to labels.

`build_dataset` reads the store (an edge); `dataset_digest` and `label_column` are pure.
Snapshots whose label window is not fully observed by the last delivery are refused with a
message naming them (never silently kept: their labels would be too low). `add_extra_inputs`
joins the optional extra inputs of the training config (``extra_inputs``) as model inputs;
training and the audit's rebuild of the test snapshot both call it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from features.contract import PROTECTED_ATTRIBUTES
from features.frames.builder import Population, collect_features
from features.frames.definitions import FeatureSpec
from features.frames.scope import SCOPE_AGE, ages
from features.store.offline import OfflineStore
from riskcast.errors import ConfigError, InputError, NotFoundError
from training.labels import LabelDefinition, labels_for, unobserved_windows

LABEL = "label"
KEYS = ("person_id", "as_of")
STACK_DATES_PER_BATCH = 4
"""Snapshots built together at most. The builder holds every person's features for each date of
a batch before the population filter keeps its rows: at 1M persons all 26 dates at once peaked
at 9.3 GB for a 0.18 GB stack, one date at a time at 0.96 GB with the same rows and about the
same time (experiments/bench_nation.py, `--stack`); a batch of 4 keeps the many small builds of
the tests cheap and the memory bounded by a few snapshots, not by the whole history."""
STACK_PERSON_DATES = 4_000_000
"""...and at most this many person-dates in one build (persons in the register x dates of the
batch): at 10M persons, 4 dates in one build peaked at 16.9 GB for a 1.8 GB stack (about 0.4 GB
per million person-dates); with this budget a nation's stack is built one date at a time."""


def dates_per_batch(persons: int) -> int:
    """How many snapshot dates one build takes for a register of ``persons`` rows."""
    return max(1, min(STACK_DATES_PER_BATCH, STACK_PERSON_DATES // max(persons, 1)))


@dataclass(frozen=True)
class Dataset:
    """Rows (person, as_of) with keys, the model inputs, the protected (audit) features and
    ``label`` (Int8 0/1), sorted by as_of then person_id. ``extra`` names the model inputs
    that came from the config's ``extra_inputs`` table (the last ones of ``features``)."""

    frame: pl.DataFrame
    features: list[str]
    protected: list[str]
    label_name: str
    horizon_days: int
    spec_hash: str
    extra: tuple[str, ...] = ()

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
    min_age: int | None = None,
) -> Dataset:
    """Features of ``spec`` as of every date for ``population`` (persons aged ``min_age`` or
    more, if given: the model's population of validity, `features.frames.scope`), with the
    label joined."""
    dates = sorted(set(dates))
    check_observed(store, dates, label)
    per_batch = dates_per_batch(_register_rows(store))
    batches = [dates[i : i + per_batch] for i in range(0, len(dates), per_batch)]
    parts = [_labelled_rows(store, spec, batch, population, label, min_age) for batch in batches]
    frame = pl.concat(parts, how="vertical").sort("as_of", "person_id")
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


def _register_rows(store: OfflineStore) -> int:
    """Rows of the persons table (every version): the size of one snapshot before filtering."""
    try:
        return int(store.scan("persons").select(pl.len()).collect().item())
    except NotFoundError:
        return 0


def _labelled_rows(
    store: OfflineStore,
    spec: FeatureSpec,
    dates: Sequence[date],
    population: Population | str,
    label: LabelDefinition,
    min_age: int | None,
) -> pl.DataFrame:
    """One batch of snapshots: the population's feature rows as of ``dates`` with the label."""
    features = collect_features(store, spec, dates, population)
    if min_age is not None:
        old_enough = ages(store, spec, dates).filter(pl.col(SCOPE_AGE) >= min_age)
        features = features.join(
            old_enough.select(*KEYS), on=list(KEYS), how="semi", maintain_order="left"
        )
    keys = features.select(*KEYS).lazy()
    labels = labels_for(store, keys, label).collect()
    frame = features.join(labels.select(*KEYS, LABEL), on=list(KEYS), how="left")
    missing = frame[LABEL].null_count()
    if missing:
        raise InputError(f"{missing} feature rows got no label (persons unknown to the store)")
    return frame.with_columns(pl.col(LABEL).cast(pl.Int8))


def add_extra_inputs(ds: Dataset, path: Path | None) -> Dataset:
    """``ds`` with the columns of the Parquet table at ``path`` joined as extra model inputs
    (``path`` None: ``ds`` unchanged). The table is keyed by ``person_id`` and, if it has the
    column, ``as_of`` (unique keys); every other column must be numeric and becomes an input,
    null where the table has no row. Protected attributes (the contract's and the spec's
    audit-only features) are refused, as is a name the dataset already has."""
    if path is None:
        return ds
    where = f"extra_inputs {path}"
    try:
        extra = pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ConfigError(f"{where}: cannot read the table ({exc})") from exc
    keys = [k for k in KEYS if k in extra.columns]
    if "person_id" not in keys:
        raise ConfigError(f"{where}: the table has no person_id column")
    names = [c for c in extra.columns if c not in keys]
    leaked = sorted(set(names) & (set(PROTECTED_ATTRIBUTES) | set(ds.protected)))
    if leaked:
        raise ConfigError(
            f"protected attributes must never be model inputs: {', '.join(leaked)} ({where})"
        )
    clash = sorted(set(names) & set(ds.frame.columns))
    wrong = [
        c for c in names if not (extra.schema[c].is_numeric() or extra.schema[c] == pl.Boolean)
    ]
    if not names or clash or wrong:
        raise ConfigError(
            f"{where}: needs numeric input columns besides {', '.join(keys)} with new names"
            + (f"; already in the dataset: {', '.join(clash)}" if clash else "")
            + (f"; not numeric: {', '.join(wrong)}" if wrong else "")
        )
    if extra.select(keys).is_duplicated().any():
        raise ConfigError(f"{where}: duplicate rows for key(s) {', '.join(keys)}")
    extra = extra.with_columns(pl.col(k).cast(ds.frame.schema[k]) for k in keys)
    frame = ds.frame.join(extra, on=keys, how="left").sort("as_of", "person_id")
    return replace(ds, frame=frame, features=[*ds.features, *names], extra=tuple(names))
