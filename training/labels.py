"""Labels on knowledge time: a new criminal case registered in (end of T, end of T + H]."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from features.contract import TABLES
from features.store.offline import VALID_TO, OfflineStore, end_of_day
from riskcast.configio import load_yaml_model
from riskcast.errors import ConfigError


class LabelDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str
    horizon_days: int = Field(gt=0)
    categories: list[str] | None = None

    def model_post_init(self, _context: object) -> None:
        allowed = TABLES["criminal_cases"].column("category").values
        for category in self.categories or []:
            if category not in allowed:
                raise ValueError(f"category {category!r} is not one of {', '.join(allowed)}")


class LabelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: dict[str, LabelDefinition]


def load_label_config(path: Path) -> LabelConfig:
    return load_yaml_model(LabelConfig, path, "label definitions")


def label_cases(
    cases: pl.LazyFrame, persons: pl.LazyFrame, as_of: list[date], definition: LabelDefinition
) -> pl.LazyFrame:
    """One row per (person, as_of): whether a matching case was registered in the window.

    ``cases`` are the criminal-case versions current at extraction (the latest knowledge);
    ``persons`` gives the population (person_id). Pure: no I/O.
    """
    windows = pl.LazyFrame(
        {
            "as_of": as_of,
            "_start": [end_of_day(d) for d in as_of],
            "_end": [end_of_day(d + timedelta(days=definition.horizon_days)) for d in as_of],
        },
        schema={
            "as_of": pl.Date(),
            "_start": pl.Datetime("us", "UTC"),
            "_end": pl.Datetime("us", "UTC"),
        },
    )
    events = cases.select("person_id", "registered_at", "category")
    if definition.categories is not None:
        events = events.filter(pl.col("category").is_in(definition.categories))
    hits = (
        events.join(windows, how="cross")
        .filter(
            (pl.col("registered_at") >= pl.col("_start"))
            & (pl.col("registered_at") < pl.col("_end"))
        )
        .select("person_id", "as_of")
        .unique()
        .with_columns(pl.lit(True).alias("label"))
    )
    population = persons.select("person_id").unique().join(windows.select("as_of"), how="cross")
    return (
        population.join(hits, on=["person_id", "as_of"], how="left")
        .with_columns(
            pl.col("label").fill_null(False),
            pl.lit(definition.horizon_days, dtype=pl.Int32).alias("horizon_days"),
        )
        .sort("person_id", "as_of")
    )


def build_labels(
    store: OfflineStore, as_of: list[date], definition: LabelDefinition
) -> pl.LazyFrame:
    """Labels for every current person from the store's latest knowledge of criminal cases."""
    last = store.state().last_delivery
    if last is None:
        raise ConfigError("the store is empty: ingest a delivery first")
    for day in as_of:
        window_end = end_of_day(day + timedelta(days=definition.horizon_days))
        if window_end > last.extracted_at.replace(microsecond=0) + timedelta(seconds=1):
            raise ConfigError(
                f"as_of {day} + {definition.horizon_days} days ends after the last delivery's "
                f"extracted_at {last.extracted_at:%Y-%m-%d}: its label window is not fully observed"
            )
    cases = store.scan("criminal_cases").filter(pl.col(VALID_TO).is_null())
    persons = store.scan("persons").filter(pl.col(VALID_TO).is_null())
    return label_cases(cases, persons, as_of, definition)


def unobserved_windows(
    store: OfflineStore, as_of: list[date], definition: LabelDefinition
) -> list[str]:
    """One message per as-of date whose label window ends after the last delivery's
    ``extracted_at`` (its label would be silently too low); empty when all are observed."""
    last = store.state().last_delivery
    if last is None:
        raise ConfigError("the store is empty: ingest a delivery first")
    limit = last.extracted_at.replace(microsecond=0) + timedelta(seconds=1)
    problems = []
    for day in sorted(as_of):
        end = day + timedelta(days=definition.horizon_days)
        if end_of_day(end) > limit:
            problems.append(
                f"as_of {day}: the {definition.horizon_days}-day label window ends {end}, after "
                f"the last delivery's extracted_at {last.extracted_at:%Y-%m-%d}"
            )
    return problems


def labels_for(
    store: OfflineStore, keys: pl.LazyFrame, definition: LabelDefinition
) -> pl.LazyFrame:
    """Labels for the given (person_id, as_of) rows only (a training set's snapshots), from
    the store's latest knowledge of criminal cases; refuses windows not fully observed."""
    dates = keys.select(pl.col("as_of").unique()).collect()["as_of"].to_list()
    problems = unobserved_windows(store, dates, definition)
    if problems:
        raise ConfigError("; ".join(problems))
    cases = store.scan("criminal_cases").filter(pl.col(VALID_TO).is_null())
    persons = keys.select("person_id").unique()
    labels = label_cases(cases, persons, dates, definition)
    return keys.select("person_id", "as_of").join(labels, on=["person_id", "as_of"], how="left")
