"""Point-in-time feature frames: one row per (entity, as-of) from the bitemporal store.

The plan is one pass per source table: the table's rows visible at each as-of date (each row
as it was known then, via `features.store.offline.visible_as_of`) are stacked with their as-of,
and every feature of that table is computed in a single ``group_by(entity, as_of)``. The
features are finished on that small aggregate and left-joined to the population, so a delivered
table where an entity has no row gives the aggregation's empty value (0 for counts), while a
table never delivered gives null. `build_features` returns the lazy plan; `collect_features`
runs it in two stages (table passes streaming and together, joins in memory), which is faster.

Written for an entity kind: the entity key and the clock column are parameters
(`EntitySpec`), so map cells per week can be added without rewriting the pass.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path

import polars as pl

from features.contract import TABLES, Table
from features.frames import partition
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
from features.frames.definitions import AS_OF, EntityKind, FeatureSpec
from features.store.offline import OfflineStore, visible_as_of
from features.store.tombstones import ErasedPersons, drop_erased, erased_ids
from riskcast import cluster
from riskcast.errors import InputError, NotFoundError

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
    *,
    allow_after_extraction: bool = False,
) -> pl.LazyFrame:
    """Features of ``spec`` for every entity of ``population`` at each date in ``as_of``.

    Columns: the entity key, the clock (``as_of``), then the features in spec order. Only the
    store's committed state is read; row order is unspecified (sort if you need it). For large
    frames prefer `collect_features`, which runs the same plan in two stages.
    """
    read = snapshot_reader(store, as_of, allow_after_extraction)
    plan = plan_frame(read, spec, as_of, population)
    return plan.assemble(plan.base, plan.tables)


def collect_features(
    store: OfflineStore,
    spec: FeatureSpec,
    as_of: Sequence[date],
    population: str | Population = Population.ALL,
    *,
    allow_after_extraction: bool = False,
) -> pl.DataFrame:
    """`build_features`, collected in stages that use memory and both cores better.

    1. the entities and every table pass run together on the streaming engine;
    2. each table's aggregate is left-joined to the entity keys alone (in memory, keeping the
       keys' order) and the results are put side by side: a chain of joins would copy the ever
       wider frame once per table (at 5M persons: twice the time and memory);
    3. features are finished on the assembled frame.

    Inside a Dask session (``RISKCAST_DASK_SCHEDULER``, `riskcast.cluster`) the same stages run
    per partition of persons on the workers (`features.frames.partition`); the gathered frame
    is then sorted by (as_of, person_id), and equals this one value for value.
    """
    read = snapshot_reader(store, as_of, allow_after_extraction)
    session = cluster.current()
    if session is not None:  # the partitioning seam: the same `collect_frame` per partition
        return partition.collect_partitioned(session, read, *_per_part(spec, as_of, population))
    return collect_frame(read, spec, as_of, population)


def write_features(
    session: cluster.Session,
    store: OfflineStore,
    spec: FeatureSpec,
    as_of: Sequence[date],
    population: str | Population,
    out: Path,
    parts: int | None = None,
) -> pl.DataFrame:
    """`collect_features` on the cluster written as partitioned Parquet (folder ``out``, a
    ``part-<k>.parquet`` per partition, each written by its worker); the rows per as_of."""
    read = snapshot_reader(store, as_of, False)
    steps = _per_part(spec, as_of, population)
    return partition.write_partitioned(session, read, *steps, out, parts)


def _per_part(
    spec: FeatureSpec, as_of: Sequence[date], population: str | Population
) -> tuple[partition.Planner, partition.Builder]:
    """What a partition runs: the plan (to learn the tables it reads) and `collect_frame`."""
    dates = list(as_of)
    return (
        functools.partial(plan_frame, spec=spec, as_of=dates, population=population),
        functools.partial(collect_frame, spec=spec, as_of=dates, population=population),
    )


def collect_frame(
    read: TableReader,
    spec: FeatureSpec,
    as_of: Sequence[date],
    population: str | Population = Population.ALL,
) -> pl.DataFrame:
    """`collect_features` on any table reader (pure: the reader is the only input); what a
    Dask worker runs on its partition of persons (`features.frames.partition`)."""
    plan = plan_frame(read, spec, as_of, population)
    delivered = [name for name, frame in plan.tables.items() if frame is not None]
    lazy = [plan.base, *(plan.tables[name] for name in delivered)]
    frames = pl.collect_all([f for f in lazy if f is not None], engine="streaming")
    tables = {name: f.lazy() for name, f in zip(delivered, frames[1:], strict=True)}
    keys = [plan.entity.key, plan.entity.clock]
    base = _restrict(frames[0].lazy(), tables, plan.population, spec, plan.entity)
    base_frame = base.collect(engine="in-memory")
    aligned = [  # one table at a time: each join uses every core, and peak memory stays low
        base_frame.lazy()
        .select(keys)
        .join(part, on=keys, how="left", maintain_order="left")
        .drop(keys)
        .with_columns(plan.empties(name))  # here, so finishing copies nothing
        .collect(engine="in-memory")
        for name, part in tables.items()
    ]
    del frames, tables  # the aggregates are no longer needed: free them before finishing
    joined = pl.concat([base_frame, *aligned], how="horizontal")
    del base_frame, aligned
    return plan.finish(joined.lazy(), set(delivered)).collect(engine="in-memory")


def snapshot_reader(store: OfflineStore, as_of: Sequence[date], allow_late: bool) -> TableReader:
    """A reader of one committed state (read once), so a frame never mixes two states when an
    ingest commits while it is planned; the store keeps the previous generation's files.

    Dates after the last extraction are refused unless ``allow_late`` (tests of what a store
    knew between deliveries): nothing is known of payments, spells or outcomes after it, so
    unpaid obligations would look overdue and open spells ongoing.
    """
    state = store.state()
    last = state.last_delivery
    late = sorted(d for d in as_of if last is not None and d > last.extracted_at.date())
    if last is not None and late and not allow_late:
        raise InputError(
            f"as_of {', '.join(map(str, late))} is after the last delivery "
            f"({last.extract_id}, extracted {last.extracted_at:%Y-%m-%d}): features would "
            "pretend to know what no register has reported yet"
        )

    erased = erased_ids(store.root)  # tombstones: an erased person is absent at every as-of
    return functools.partial(read_table, root=store.root, tables=dict(state.tables), erased=erased)


def read_table(
    name: str, *, root: Path, tables: Mapping[str, str], erased: ErasedPersons
) -> pl.LazyFrame:
    """All versions of table ``name`` in one committed state (``tables``: its files, relative
    to the store's ``root``), without the erased persons' rows; raises NotFoundError if the
    state has none.

    The reader `_snapshot` hands out is this function with its parts bound
    (``functools.partial``): a module-level function and plain data (a path, a dict, the
    tombstones, which pickle by their key), so the reader pickles by reference and arrives on
    a Dask worker as it left, with nothing of the driver's process (an open store, a closure's
    cells) in it."""
    rel = tables.get(TABLES[name].name)
    if rel is None:
        raise NotFoundError(f"table {name!r} has not been delivered to the store")
    frame = pl.scan_parquet(root / rel)
    return drop_erased(frame, erased) if TABLES[name].has_person else frame


@dataclass(frozen=True)
class FramePlan:
    """The lazy pieces of a feature frame and how they are put together (pure)."""

    spec: FeatureSpec
    entity: EntitySpec
    population: Population
    compiled: dict[str, dict[str, Compiled]]
    base: pl.LazyFrame
    """Entities known at each date, with their own attributes."""
    tables: dict[str, pl.LazyFrame | None]
    """Per source table: one row per (entity, date) with rows; None if never delivered."""

    def assemble(self, base: pl.LazyFrame, tables: dict[str, pl.LazyFrame | None]) -> pl.LazyFrame:
        """Restrict to the population, join the table aggregates, finish every feature."""
        keys = [self.entity.key, self.entity.clock]
        frame = _restrict(base, tables, self.population, self.spec, self.entity)
        for part in tables.values():
            if part is not None:
                frame = frame.join(part, on=keys, how="left")
        return self.finish(frame, {name for name, part in tables.items() if part is not None})

    def empties(self, table: str) -> list[pl.Expr]:
        """The empty value of each feature of ``table`` finished before the join, for entities
        that have no row in it (e.g. 0 for counts; features whose empty is null are absent)."""
        return [
            pl.col(c.name).fill_null(c.empty)
            for c in self.compiled.get(table, {}).values()
            if c.empty is not None and not c.late
        ]

    def finish(self, frame: pl.LazyFrame, delivered: set[str]) -> pl.LazyFrame:
        """Features from the joined frame: empty values for entities without rows in a
        delivered table, nulls for tables never delivered, then derived features."""
        entity, spec = self.entity, self.spec
        finals: list[pl.Expr] = []
        for feature in spec.features:
            if feature.is_derived:
                continue
            if feature.source == entity.own_table:
                finals.append(entity_feature(feature, entity.clock))
                continue
            if feature.source not in delivered:  # never delivered: missing, not zero
                finals.append(pl.lit(None, dtype=output_dtype(feature)).alias(feature.name))
                continue
            c = self.compiled[feature.source][feature.name]
            if c.late:
                value = c.final if c.empty is None else c.final.fill_null(c.empty)
                finals.append(value.alias(c.name))
        finals += [e for name in sorted(delivered) for e in self.empties(name)]
        frame = frame.with_columns(finals)
        for f in spec.features:  # in spec order: a derived feature may read an earlier one
            if f.is_derived:
                frame = frame.with_columns(derived_feature(f))
        return frame.select([entity.key, entity.clock, *spec.names])


def plan_frame(
    read: TableReader,
    spec: FeatureSpec,
    as_of: Sequence[date],
    population: str | Population = Population.ALL,
) -> FramePlan:
    """Plan a feature frame on any table reader (pure: the reader is the only input)."""
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
    compiled = compile_spec(spec, entity)
    return FramePlan(
        spec=spec,
        entity=entity,
        population=pop,
        compiled=compiled,
        base=entities_known(read, entity, dates),
        tables=table_partials(read, compiled, dates, entity, pop),
    )


def compile_spec(spec: FeatureSpec, entity: EntitySpec) -> dict[str, dict[str, Compiled]]:
    """Table features compiled, grouped by source table (spec order within a table)."""
    by_table: dict[str, dict[str, Compiled]] = {}
    for feature in spec.features:
        if feature.is_derived or feature.source == entity.own_table:
            continue
        compiled = compile_table_feature(feature, entity.clock)
        by_table.setdefault(feature.source, {})[feature.name] = compiled
    return by_table


def table_partials(
    read: TableReader,
    compiled: dict[str, dict[str, Compiled]],
    dates: list[date],
    entity: EntitySpec,
    population: Population = Population.ALL,
) -> dict[str, pl.LazyFrame | None]:
    """One frame per source table: an entity's finished features of that table (and the
    partials of features finished after the join); None when the table was never delivered."""
    extra = _population_partials(entity, population)
    tables = list(compiled) + [name for name in extra if name not in compiled]
    keys = [entity.key, entity.clock]
    out: dict[str, pl.LazyFrame | None] = {}
    for name in tables:
        try:
            versions = read(name)
        except NotFoundError:
            out[name] = None
            continue
        features = list(compiled.get(name, {}).values())
        pop_rows, pop_aggs, pop_relevant = extra.get(name, ([], [], None))
        row_exprs = [e for c in features for e in c.rows] + pop_rows
        aggs = [e for c in features for e in c.partials] + pop_aggs
        rows = visible_rows(versions, TABLES[name], dates, entity)
        relevant = [c.relevant for c in features] + ([pop_relevant] if pop_rows or pop_aggs else [])
        if relevant and all(r is not None for r in relevant):
            rows = rows.filter(pl.any_horizontal(relevant))
        rows = rows.select(*keys, *row_exprs)
        early = [c.final for c in features if not c.late]
        kept = [c.name for c in features if not c.late]
        kept += [str(e.meta.output_name()) for c in features if c.late for e in c.partials]
        kept += [str(e.meta.output_name()) for e in pop_aggs]
        out[name] = rows.group_by(keys).agg(aggs).with_columns(early).select(*keys, *kept)
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
) -> pl.LazyFrame:
    """Entities known at each date, with their own attributes (the base of every frame).

    Persons have no knowledge time in the contract: the store knows the first delivery's
    persons throughout (the register's back-filled state) and a person first delivered later
    from that delivery's ``extracted_at`` (see `features.ingest.versioning`). Nobody is in a
    frame before their birth date.
    """
    own = TABLES[entity.own_table]
    try:
        versions = read(own.name)
    except NotFoundError as exc:
        raise NotFoundError(f"{own.name} was never delivered: no population to build") from exc
    rows = visible_rows(versions, own, dates, entity)
    if entity.kind is EntityKind.PERSON:
        rows = rows.filter(date_days(own, BIRTH_DATE) <= clock_days(entity.clock))
    return rows.select(entity.key, entity.clock, *own.column_names[1:])


def _population_partials(
    entity: EntitySpec, population: Population
) -> dict[str, tuple[list[pl.Expr], list[pl.Expr], pl.Expr | None]]:
    """Extra (row columns, aggregations, relevant rows) a population needs, computed in the
    same table passes."""
    if entity.kind is not EntityKind.PERSON or population is Population.ALL:
        return {}
    if population is Population.WITH_RECORD:
        return {"criminal_cases": ([], [pl.len().alias(POP_CASES)], None)}
    released = date_days(TABLES["releases"], "released_at")
    known = released <= clock_days(entity.clock)
    last = pl.when(known).then(released).alias(POP_RELEASE)
    return {"releases": ([last], [pl.col(POP_RELEASE).max()], known)}


def _restrict(
    frame: pl.LazyFrame,
    partials: Mapping[str, pl.LazyFrame | None],
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
    "EntitySpec",
    "FramePlan",
    "Population",
    "build_features",
    "collect_features",
    "collect_frame",
    "compile_spec",
    "entities_known",
    "feature_dtypes",
    "plan_frame",
    "read_table",
    "table_partials",
    "visible_rows",
    "write_features",
]
