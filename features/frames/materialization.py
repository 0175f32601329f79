"""What `riskcast features materialize` writes to the online store, built where it is cheapest.

A materialisation is, per person known at the as-of date, the model inputs and the scope
columns (`features.frames.scope`: population membership and age), as one frame. It is a pure
function of a table reader (`materialization_frame`), so on a Dask cluster each worker builds
it for its partition of persons with the single machine's own functions (`collect_frame`,
`scope_frame`), writes it as a part file, and the driver streams the parts one at a time into
the online store's staging table (`SqlOnlineStore.materialize_parts`): the driver never holds
the nation's frame (at 10M persons that was 11.3 GB; ~22 GB at 20M, more than a service host
has). Without a cluster the frame is built here, as before, and written in slices.

The staging table is swapped in only when every part is written, in the store's transaction:
a failure leaves the previous materialisation serving.
"""

from __future__ import annotations

import functools
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date

import polars as pl

from features.frames import partition
from features.frames.builder import (
    Population,
    TableReader,
    collect_frame,
    plan_frame,
    snapshot_reader,
)
from features.frames.definitions import FeatureSpec
from features.frames.scope import (
    SCOPE_AGE,
    SCOPE_RECORD,
    age_spec,
    released_column,
    scope_frame,
)
from features.online.store import Materialization, SqlOnlineStore
from features.store.offline import OfflineStore
from riskcast import cluster
from riskcast.errors import NotFoundError


def materialization_frame(read: TableReader, spec: FeatureSpec, day: date) -> pl.DataFrame:
    """``person_id`` (String), ``as_of``, the model inputs and the scope columns of every
    person known at ``day`` (pure: the reader is the only input)."""
    frame = collect_frame(read, spec, [day], Population.ALL)
    frame = frame.select(pl.col("person_id").cast(pl.String), "as_of", *spec.model_inputs())
    scope = scope_frame(read, spec, [day]).drop("as_of")
    return frame.join(scope, on="person_id", how="left", maintain_order="left")


def plan_materialization(read: TableReader, spec: FeatureSpec, day: date) -> None:
    """Plans every frame `materialization_frame` builds (reads no data): which tables it reads."""
    plan_frame(read, spec, [day], Population.ALL)
    ages = age_spec(spec)
    for population in Population:
        try:
            plan_frame(read, ages, [day], population)
        except NotFoundError:  # the table a population needs was never delivered: nobody
            continue


@dataclass
class MaterializedCounts:
    """Rows and population sizes of a materialisation, tallied as its parts pass."""

    rows: int = 0
    with_record: int = 0
    released: int = 0
    age_unknown: int = 0
    released_column: str = ""
    parts: int = field(default=0)

    def tally(self, part: pl.DataFrame) -> pl.DataFrame:
        self.rows += part.height
        self.parts += 1
        if SCOPE_RECORD in part.columns:
            self.with_record += int(part[SCOPE_RECORD].sum())
        if self.released_column in part.columns:
            self.released += int(part[self.released_column].sum())
        if SCOPE_AGE in part.columns:
            self.age_unknown += part[SCOPE_AGE].null_count()
        return part


def materialize_online(
    store: OfflineStore, spec: FeatureSpec, day: date, online: SqlOnlineStore
) -> tuple[Materialization, MaterializedCounts]:
    """Build the materialisation of ``day`` and write it to ``online`` (on the cluster when a
    Dask session is open: built per partition on the workers, streamed part by part)."""
    counts = MaterializedCounts(
        released_column=released_column(spec.populations.released_within_months)
    )
    read = snapshot_reader(store, [day], False)
    build = functools.partial(materialization_frame, spec=spec, day=day)
    session = cluster.current()
    if session is None:
        parts: Iterator[pl.DataFrame] = iter([build(read)])
        return online.materialize_parts(map(counts.tally, parts), day, spec.spec_hash()), counts
    plan = functools.partial(plan_materialization, spec=spec, day=day)
    folder = session.scratch / f"materialize-{uuid.uuid4().hex[:12]}"
    try:
        partition.write_partitioned(session, read, plan, build, folder)
        files = sorted(folder.glob("part-*.parquet"))
        written = online.materialize_parts(
            (counts.tally(pl.read_parquet(path)) for path in files), day, spec.spec_hash()
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return written, counts
