"""Point-in-time feature frames: one row per (entity, as-of) from the bitemporal store.

The plan is one pass per source table: the table's rows visible at each as-of date (each row
as it was known then, via `features.store.offline.visible_as_of`) are stacked with their as-of,
and every feature of that table is computed in a single ``group_by(entity, as_of)``. The
partial results are left-joined to the population, so a delivered table where an entity has no
row gives the aggregation's empty value (0 for counts), while a table never delivered gives
null. Everything stays lazy; the caller collects (streaming engine) or sinks.

Written for an entity kind: the entity key and the clock column are parameters
(`EntitySpec`), so map cells per week can be added without rewriting the pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

import polars as pl

from features.contract import TABLES, Table
from features.errors import InputError, NotFoundError
from features.frames.compile import (
    BIRTH_DATE,
    Compiled,
    clock_days,
    compile_table_feature,
    completed_months,
    date_days,
    derived_feature,
    entity_feature,
    output_dtype,
)
from features.frames.definitions import (
    AS_OF,
    Aggregation,
    EntityKind,
    FeatureDef,
    FeatureSpec,
)
from features.store.offline import FIRST_EXTRACT, VALID_FROM, OfflineStore, visible_as_of

POP_CASES = "__pop_cases"
POP_RELEASE = "__pop_last_release"


class Population(StrEnum):
    ALL = "all"  # entities known at as_of
    WITH_RECORD = "with_record"  # at least one criminal case known by as_of
    RELEASED = "released"  # a release known by as_of within the last N months


@dataclass(frozen=True)
class EntitySpec:
    """How rows of a source table map to an entity, and the name of the clock column."""

    kind: EntityKind
    key: str
    clock: str
    own_table: str

    def key_expr(self, table: Table) -> pl.Expr:
        if self.kind is EntityKind.PERSON and table.has_person:
            return pl.col("person_id")
        raise InputError(f"table {table.name} has no {self.kind} key")


ENTITIES: dict[EntityKind, EntitySpec] = {
    EntityKind.PERSON: EntitySpec(EntityKind.PERSON, "person_id", AS_OF, "persons"),
}

TableReader = Callable[[str], pl.LazyFrame]
"""All versions of a table (``OfflineStore.scan``); raises NotFoundError if never delivered."""


def build_features(
    store: OfflineStore,
    spec: FeatureSpec,
    as_of: Sequence[date],
    population: str | Population = Population.ALL,
) -> pl.LazyFrame:
    """Features of ``spec`` for every entity of ``population`` at each date in ``as_of``.

    Columns: the entity key, the clock (``as_of``), then the features in spec order. Only the
    store's committed state is read; row order is unspecified (sort if you need it).
    """
    deliveries = {d.extract_id: d.extracted_at for d in store.state().deliveries}
    first = store.state().deliveries[0].extract_id if deliveries else None
    return build_frame(
        store.scan, spec, as_of, population, delivered_at=deliveries, first_extract=first
    )


def build_frame(
    read: TableReader,
    spec: FeatureSpec,
    as_of: Sequence[date],
    population: str | Population = Population.ALL,
    *,
    delivered_at: dict[str, datetime] | None = None,
    first_extract: str | None = None,
) -> pl.LazyFrame:
    """`build_features` on any table reader (pure: the reader is the only input)."""
    dates = sorted(set(as_of))
    if not dates:
        raise InputError("as_of: give at least one date")
    try:
        pop = Population(population)
    except ValueError:
        raise InputError(
            f"population {population!r} is not one of {', '.join(p.value for p in Population)}"
        ) from None
    entity = ENTITIES.get(spec.entity)
    if entity is None:
        raise InputError(f"entity {spec.entity} is not supported yet (only person)")

    partials = table_partials(read, spec, dates, entity, pop)
    frame = entities_known(read, entity, dates, delivered_at or {}, first_extract)
    frame = _restrict(frame, partials, pop, spec, entity)
    keys = [entity.key, entity.clock]
    for part in partials.values():
        if part is not None:
            frame = frame.join(part, on=keys, how="left")
    finals: list[pl.Expr] = []
    for feature in spec.features:
        if feature.is_derived:
            continue
        if feature.source == entity.own_table:
            finals.append(entity_feature(feature, entity.clock))
        elif partials.get(feature.source) is None:
            finals.append(pl.lit(None, dtype=output_dtype(feature)).alias(feature.name))
        else:
            finals.append(compile_table_feature(feature, entity.clock).final)
    frame = frame.with_columns(finals)
    derived = [derived_feature(f) for f in spec.features if f.is_derived]
    for expr in derived:  # in spec order: a derived feature may read an earlier derived one
        frame = frame.with_columns(expr)
    return frame.select(keys + spec.names)


def table_partials(
    read: TableReader,
    spec: FeatureSpec,
    dates: list[date],
    entity: EntitySpec,
    population: Population = Population.ALL,
) -> dict[str, pl.LazyFrame | None]:
    """One aggregated frame per source table (None when the table was never delivered)."""
    by_table: dict[str, list[Compiled]] = {}
    for feature in spec.features:
        if feature.is_derived or feature.source == entity.own_table:
            continue
        by_table.setdefault(feature.source, []).append(compile_table_feature(feature, entity.clock))
    extra = _population_partials(entity, population)
    for name in extra:
        by_table.setdefault(name, [])
    out: dict[str, pl.LazyFrame | None] = {}
    for name, compiled in by_table.items():
        try:
            versions = read(name)
        except NotFoundError:
            out[name] = None
            continue
        table = TABLES[name]
        keys = [entity.key, entity.clock]
        pop_rows, pop_aggs = extra.get(name, ([], []))
        row_exprs = [e for c in compiled for e in c.rows] + pop_rows
        aggs = [e for c in compiled for e in c.partials] + pop_aggs
        rows = visible_rows(versions, table, dates, entity).select(*keys, *row_exprs)
        out[name] = rows.group_by(keys).agg(aggs)
    return out


def visible_rows(
    versions: pl.LazyFrame, table: Table, dates: list[date], entity: EntitySpec
) -> pl.LazyFrame:
    """The table's rows as known at the end of each date, stacked with that date as the clock."""
    key = entity.key_expr(table).alias(entity.key)
    frames = [
        versions.filter(visible_as_of(table, d)).with_columns(
            key, pl.lit(d, dtype=pl.Date).alias(entity.clock)
        )
        for d in dates
    ]
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical")


def entities_known(
    read: TableReader,
    entity: EntitySpec,
    dates: list[date],
    delivered_at: dict[str, datetime],
    first_extract: str | None,
) -> pl.LazyFrame:
    """Entities known at each date, with their own attributes (the base of every frame).

    Persons have no knowledge time in the contract. The first delivery is taken as the
    register's back-filled state (known throughout); a person first delivered later is known
    from that delivery's ``extracted_at``, and nobody is in a frame before their birth date.
    """
    own = TABLES[entity.own_table]
    try:
        versions = read(own.name)
    except NotFoundError as exc:
        raise NotFoundError(f"{own.name} was never delivered: no population to build") from exc
    rows = visible_rows(versions, own, dates, entity)
    if delivered_at:
        known_from = pl.col(FIRST_EXTRACT).replace_strict(
            list(delivered_at),
            list(delivered_at.values()),
            default=None,
            return_dtype=pl.Datetime("us", "UTC"),
        )
        rows = rows.filter(
            pl.col(VALID_FROM).is_not_null()
            | (pl.col(FIRST_EXTRACT) == pl.lit(first_extract))
            | (known_from.dt.date().cast(pl.Int32) <= clock_days(entity.clock)).fill_null(False)
        )
    if entity.kind is EntityKind.PERSON:
        rows = rows.filter(date_days(own, BIRTH_DATE) <= clock_days(entity.clock))
    return rows.select(entity.key, entity.clock, *own.column_names[1:])


def _population_partials(
    entity: EntitySpec, population: Population
) -> dict[str, tuple[list[pl.Expr], list[pl.Expr]]]:
    """Extra (row columns, aggregations) a population needs, computed in the same passes."""
    if entity.kind is not EntityKind.PERSON or population is Population.ALL:
        return {}
    if population is Population.WITH_RECORD:
        return {"criminal_cases": ([], [pl.len().alias(POP_CASES)])}
    released = date_days(TABLES["releases"], "released_at")
    last = pl.when(released <= clock_days(entity.clock)).then(released).alias(POP_RELEASE)
    return {"releases": ([last], [pl.col(POP_RELEASE).max()])}


def _restrict(
    frame: pl.LazyFrame,
    partials: dict[str, pl.LazyFrame | None],
    population: Population,
    spec: FeatureSpec,
    entity: EntitySpec,
) -> pl.LazyFrame:
    """Keep the population's entities (a semi join, before the wide joins)."""
    if population is Population.ALL:
        return frame
    keys = [entity.key, entity.clock]
    if population is Population.WITH_RECORD:
        cases = partials.get("criminal_cases")
        if cases is None:
            raise NotFoundError("population with_record needs criminal_cases, never delivered")
        hits = cases.filter(pl.col(POP_CASES) > 0).select(keys)
    else:
        releases = partials.get("releases")
        if releases is None:
            raise NotFoundError("population released needs releases, never delivered")
        months = spec.populations.released_within_months
        within = completed_months(pl.col(POP_RELEASE), clock_days(entity.clock)) < months
        hits = releases.filter(pl.col(POP_RELEASE).is_not_null() & within).select(keys)
    return frame.join(hits, on=keys, how="semi")


def feature_dtypes(spec: FeatureSpec) -> dict[str, pl.DataType]:
    """Column dtypes of the features of ``spec`` (the online store decodes vectors with them)."""
    return {f.name: output_dtype(f) for f in spec.features}


__all__ = [
    "ENTITIES",
    "Aggregation",
    "EntitySpec",
    "FeatureDef",
    "Population",
    "build_features",
    "build_frame",
    "entities_known",
    "feature_dtypes",
    "table_partials",
    "visible_rows",
]
