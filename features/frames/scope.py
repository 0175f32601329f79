"""Scope of validity: which persons a model may score, as of a date.

A model is trained, calibrated and audited on one population (`Population`: ``all``,
``with_record``, ``released``) and optionally above a minimum age. Outside it its probabilities
mean nothing (a model trained on persons with a record, asked about a child without one,
answers with the base rate of offenders), so the service must answer "outside the model's
population" instead of a number. Membership is computed here with the very same point-in-time
builder that restricts the training snapshots (`features.frames.builder.collect_features`
with a population), so that the served set and the trained set cannot drift apart.

- `scope_columns` (an edge: reads the offline store) gives, per person and as-of date, the
  membership of every population and the age: the columns the online store keeps beside the
  model inputs (``scope_record``, ``scope_released_<N>m``, ``scope_age``);
- `PopulationScope` is what a registered model declares (its population of validity);
- `outside_reasons` (pure) says, per row, why a person is outside a scope (null: inside);
  `split_scope` keeps the rows inside and only the ids of the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Self

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.frames.builder import Population, TableReader, collect_features, collect_frame
from features.frames.definitions import FeatureSpec
from features.store.offline import OfflineStore
from riskcast.errors import NotFoundError

SCOPE_PREFIX = "scope_"
"""Column names the online store reserves for scope (never model inputs)."""
SCOPE_RECORD = "scope_record"
SCOPE_AGE = "scope_age"
KEYS = ("person_id", "as_of")


def released_column(months: int) -> str:
    """The membership column of population ``released`` for a window of ``months``."""
    return f"{SCOPE_PREFIX}released_{months}m"


class PopulationScope(BaseModel):
    """The population a model version was trained, calibrated and audited on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    population: Population
    released_within_months: int | None = Field(default=None, gt=0)
    min_age: int | None = Field(default=None, ge=0, le=120)

    @model_validator(mode="after")
    def _months_only_for_released(self) -> Self:
        released = self.population is Population.RELEASED
        if released and self.released_within_months is None:
            raise ValueError("population released needs released_within_months")
        if not released and self.released_within_months is not None:
            raise ValueError("released_within_months is only for population released")
        return self

    @classmethod
    def of(cls, population: Population | str, spec: FeatureSpec, min_age: int | None) -> Self:
        pop = Population(population)
        months = spec.populations.released_within_months if pop is Population.RELEASED else None
        return cls(population=pop, released_within_months=months, min_age=min_age)

    def describe(self) -> str:
        """One line for cards, reports and pages."""
        if self.population is Population.WITH_RECORD:
            text = "persons with at least one criminal case known by the as-of date"
        elif self.population is Population.RELEASED:
            text = (
                "persons with a release (or community-sentence start) known by the as-of date "
                f"within the last {self.released_within_months} months"
            )
        else:
            text = "every person in the register"
        if self.min_age is not None:
            text += f", aged {self.min_age} or more"
        return f"{text} (population `{self.population}`)"

    def required_columns(self) -> list[str]:
        """The scope columns a vector must carry for this scope to be decided."""
        columns = []
        if self.population is Population.WITH_RECORD:
            columns.append(SCOPE_RECORD)
        elif self.population is Population.RELEASED:
            assert self.released_within_months is not None
            columns.append(released_column(self.released_within_months))
        if self.min_age is not None:
            columns.append(SCOPE_AGE)
        return columns


def outside_reasons(vectors: pl.DataFrame, scope: PopulationScope) -> pl.Series:
    """Per row of ``vectors`` (with ``as_of`` and the scope columns), why the person is
    outside ``scope``, or null when inside. Missing scope columns put everyone outside (a
    materialisation made before scopes existed, or for another release window): a person is
    scored only on evidence that they belong."""
    n = vectors.height
    missing = [c for c in scope.required_columns() if c not in vectors.columns]
    if missing:
        text = (
            f"the materialised vectors carry no {', '.join(missing)}: the model's population "
            "cannot be checked; materialise again (`riskcast features materialize`) with the "
            "feature spec the model was trained on"
        )
        return pl.Series("outside", [text] * n, dtype=pl.String)
    if n == 0:
        return pl.Series("outside", [], dtype=pl.String)
    day = (
        pl.col("as_of").cast(pl.String) if "as_of" in vectors.columns else pl.lit("the as-of date")
    )
    reasons: list[pl.Expr] = []
    if scope.population is Population.WITH_RECORD:
        reasons.append(
            pl.when(~pl.col(SCOPE_RECORD).fill_null(False)).then(
                pl.concat_str(
                    pl.lit("no criminal case known by "),
                    day,
                    pl.lit(": the model does not score persons without a record"),
                )
            )
        )
    elif scope.population is Population.RELEASED:
        months = scope.released_within_months
        assert months is not None
        reasons.append(
            pl.when(~pl.col(released_column(months)).fill_null(False)).then(
                pl.concat_str(
                    pl.lit("no release known by "),
                    day,
                    pl.lit(
                        f" within the last {months} months: the model scores only persons "
                        f"released within {months} months"
                    ),
                )
            )
        )
    if scope.min_age is not None:
        tail = f": the model scores only persons aged {scope.min_age} or more"
        reasons.append(
            pl.when(pl.col(SCOPE_AGE).is_null())
            .then(pl.concat_str(pl.lit("age unknown on "), day, pl.lit(tail)))
            .when(pl.col(SCOPE_AGE) < scope.min_age)
            .then(
                pl.concat_str(
                    pl.lit("aged "),
                    pl.col(SCOPE_AGE).cast(pl.String),
                    pl.lit(" on "),
                    day,
                    pl.lit(tail),
                )
            )
        )
    if not reasons:
        return pl.Series("outside", [None] * n, dtype=pl.String)
    return vectors.select(pl.coalesce(reasons).alias("outside")).to_series()


def in_scope(vectors: pl.DataFrame, scope: PopulationScope) -> pl.DataFrame:
    """The rows of ``vectors`` inside ``scope``."""
    return vectors.filter(outside_reasons(vectors, scope).is_null())


def split_scope(vectors: pl.DataFrame, scope: PopulationScope) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows of ``vectors`` inside ``scope``, and the ``person_id`` (String) of those
    outside: a nation's outside persons are counted, not kept."""
    inside = outside_reasons(vectors, scope).is_null()
    return vectors.filter(inside), vectors.filter(~inside).select(
        pl.col("person_id").cast(pl.String)
    )


def age_spec(spec: FeatureSpec) -> FeatureSpec:
    """One feature, the age in completed years at T, under the spec's population settings."""
    return FeatureSpec.model_validate(
        {
            "version": 1,
            "entity": spec.entity,
            "populations": spec.populations.model_dump(),
            "features": [
                {
                    "name": SCOPE_AGE,
                    "source": "persons",
                    "aggregation": "age_at",
                    "column": "birth_date",
                    "domain": "demographics_age",
                    "kind": "static",
                    "direction": 0,
                    "description": "age in completed years at T (scope of validity)",
                }
            ],
        }
    )


Collect = Callable[[FeatureSpec, Population], pl.DataFrame]
"""A feature frame of a spec and a population at the dates wanted (store- or reader-based)."""


def _members(collect: Collect, spec: FeatureSpec, pop: Population) -> pl.DataFrame:
    try:
        frame = collect(spec, pop)
    except NotFoundError:  # the table the population needs was never delivered: nobody
        return pl.DataFrame(schema={"person_id": pl.String(), "as_of": pl.Date()})
    return frame.select(pl.col("person_id").cast(pl.String), pl.col("as_of").cast(pl.Date))


def _scope(collect: Collect, spec: FeatureSpec) -> pl.DataFrame:
    ages_of = age_spec(spec)
    base = collect(ages_of, Population.ALL).select(
        pl.col("person_id").cast(pl.String),
        pl.col("as_of").cast(pl.Date),
        pl.col(SCOPE_AGE).cast(pl.Int32),
    )
    months = spec.populations.released_within_months
    for pop, column in (
        (Population.WITH_RECORD, SCOPE_RECORD),
        (Population.RELEASED, released_column(months)),
    ):
        hits = _members(collect, ages_of, pop).with_columns(pl.lit(True).alias(column))
        base = base.join(hits, on=list(KEYS), how="left").with_columns(
            pl.col(column).fill_null(False)
        )
    return base


def scope_columns(store: OfflineStore, spec: FeatureSpec, dates: Sequence[date]) -> pl.DataFrame:
    """Per person known at each date: ``person_id``, ``as_of``, ``scope_age`` (Int32, null
    when the birth date is unknown), ``scope_record`` and ``scope_released_<N>m`` (Boolean),
    computed by the point-in-time builder exactly as training restricts its snapshots."""
    wanted = sorted(set(dates))
    return _scope(lambda s, pop: collect_features(store, s, wanted, pop), spec)


def scope_frame(read: TableReader, spec: FeatureSpec, dates: Sequence[date]) -> pl.DataFrame:
    """`scope_columns` on any table reader (pure; what a Dask worker runs on its partition)."""
    wanted = sorted(set(dates))
    return _scope(lambda s, pop: collect_frame(read, s, wanted, pop), spec)


def ages(store: OfflineStore, spec: FeatureSpec, dates: Sequence[date]) -> pl.DataFrame:
    """``person_id``, ``as_of``, ``scope_age`` for every person known at each date."""
    frame = collect_features(store, age_spec(spec), sorted(set(dates)), Population.ALL)
    return frame.select(
        pl.col("person_id").cast(pl.String),
        pl.col("as_of").cast(pl.Date),
        pl.col(SCOPE_AGE).cast(pl.Int32),
    )


__all__ = [
    "SCOPE_AGE",
    "SCOPE_PREFIX",
    "SCOPE_RECORD",
    "PopulationScope",
    "ages",
    "in_scope",
    "outside_reasons",
    "released_column",
    "scope_columns",
]
