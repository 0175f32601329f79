"""Ingest of a table too large to validate whole: in buckets of its version key.

A nation's ``social_status`` is 30M rows at 10M persons (60M at 20M): validated whole, the
ingest grew by 0.63 GB per million persons (6.6 GB at 10M, `experiments/bench_nation.py`).
A table with more than ``bucket_rows`` rows is therefore cut, in one streaming pass, into
buckets by a stable hash of its typed version key; the stored versions are cut the same way;
each bucket is validated and merged alone by the very functions of the whole-table path
(`validate_table`, `merge_versions`), and the table's new file is written bucket by bucket as
row groups. Memory is then one bucket, whatever the size of the country.

Why the result is the same: validation and versioning relate rows only through the version
key. Exact duplicates are equal in every column, so in their key; an id conflict is two rows
with one id, and every table with an id has that id as its version key; a delivered version
is matched only with stored versions of the same key, and a quarantined key protects only
stored versions of that key; a bucket is a hash of the key or of its ``person_id`` (where the
key holds one), so equal keys share a bucket. Everything else (coercion, the contract's
controls, the join with the persons known so far, erasure tombstones) is per row; where
buckets are by person, a bucket joins only its own persons of that index. So every row is accepted,
quarantined or dropped as a duplicate exactly as in one pass, and every version is the same
(tested: bucketed and whole-table ingests of the same deliveries store the same rows).

What differs is only the order of rows in the table's file: bucket by bucket (in each, the
stored versions in their order, then the new ones in file order) instead of all stored
versions, then all new ones. Nothing reads meaning into that order. The quarantine, usually
small, is gathered and written in file order as before.
"""

from __future__ import annotations

import math
import os
import shutil
import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from features.contract import RuleContext, Table, rules_for
from features.ingest.reader import ROW, ReadTable
from features.ingest.report import TableReport
from features.ingest.validate import TableOutcome, validate_table
from features.ingest.versioning import merge_versions, stored_columns
from features.store.tombstones import count_erased, drop_erased

BUCKET_ROWS = 4_000_000
"""A table with more rows than this is ingested in buckets (about 1.5 GB of working memory
per bucket of social_status; a table below it is validated whole, as always)."""
SPLIT_BATCH_ROWS = 1_000_000
_BUCKET = "_bucket"


def buckets_for(rows: int, bucket_rows: int) -> int:
    """How many buckets a table of ``rows`` rows is cut into (1: validated whole)."""
    if bucket_rows < 1:
        raise ValueError(f"bucket_rows must be at least 1, got {bucket_rows}")
    return max(1, math.ceil(rows / bucket_rows))


def bucket_columns(t: Table) -> tuple[str, ...]:
    """The version-key columns a bucket is a hash of: ``person_id`` alone where the key holds
    it (persons, social_status, releases), so that a bucket needs only its own persons of the
    known-person index; the whole key otherwise (a case, an offence: one person's rows may lie
    in several buckets). Any part of the key keeps equal keys in one bucket."""
    return ("person_id",) if "person_id" in t.version_key else tuple(t.version_key)


def bucket_of(t: Table, buckets: int) -> pl.Expr:
    """The bucket of a row: a hash of (part of) its version key, typed as stored (the
    delivery's coerced values and the stored versions' values hash alike)."""
    key = pl.struct([pl.col(c).cast(t.schema[c]) for c in bucket_columns(t)])
    return (key.hash(seed=5) % buckets).cast(pl.Int64)


def known_by_bucket(
    known: pl.LazyFrame | None, t: Table, buckets: int
) -> list[pl.LazyFrame | None]:
    """The known-person index for each bucket: only the bucket's persons where buckets are
    by person (each bucket's join then builds a table of 1/B of the nation), else all of it."""
    if known is None or bucket_columns(t) != ("person_id",):
        return [known] * buckets
    person = pl.struct([pl.col("person_id").cast(t.schema["person_id"])])
    keyed = known.with_columns((person.hash(seed=5) % buckets).cast(pl.Int64).alias(_BUCKET))
    parts = keyed.collect().partition_by(_BUCKET, as_dict=True, include_key=False)
    empty = known.collect().clear().lazy()
    return [parts[(k,)].lazy() if (k,) in parts else empty for k in range(buckets)]


def split_by_bucket(
    frame: pl.LazyFrame,
    bucket: pl.Expr,
    buckets: int,
    folder: Path,
    *,
    batch_rows: int = SPLIT_BATCH_ROWS,
) -> list[Path]:
    """Stream ``frame`` into one Parquet file per bucket (every file written, empty ones too),
    each holding its rows in ``frame``'s order: one batch is held at a time."""
    folder.mkdir(parents=True, exist_ok=True)
    schema = pl.DataFrame(schema=frame.collect_schema()).to_arrow().schema
    paths = [folder / f"bucket-{k:05d}.parquet" for k in range(buckets)]
    # lz4: staged files, read once; zstd costs several times the time to write here
    writers = [pq.ParquetWriter(path, schema, compression="lz4") for path in paths]
    try:
        for batch in frame.collect_batches(chunk_size=batch_rows, engine="streaming"):
            keyed = batch.with_columns(bucket.alias(_BUCKET))
            groups = keyed.partition_by(_BUCKET, as_dict=True, include_key=False)
            for (k,), part in sorted(groups.items(), key=lambda item: int(item[0][0])):
                writers[int(k)].write_table(part.to_arrow().cast(schema))
    finally:
        for writer in writers:
            writer.close()
    return paths


def without_erased(result: TableOutcome, erased: Collection[str]) -> tuple[TableOutcome, int]:
    """The outcome without the rows of erased persons (accepted or quarantined: an erased
    person's data is kept nowhere), and how many rows that was."""
    gone = count_erased(result.accepted, erased) + count_erased(result.quarantine, erased)
    if not gone:
        return result, 0
    kept = replace(
        result,
        accepted=drop_erased(result.accepted.lazy(), erased).collect(),
        quarantine=drop_erased(result.quarantine.lazy(), erased).collect(),
    )
    return kept, gone


@dataclass
class BucketedTable:
    """The counts of a table ingested bucket by bucket, and its quarantine in file order."""

    rows_in: int = 0
    accepted: int = 0
    duplicates_dropped: int = 0
    erased: int = 0
    rule_counts: dict[str, int] = field(default_factory=dict)
    quarantine_parts: list[pl.DataFrame] = field(default_factory=list)

    @property
    def quarantined(self) -> int:
        return sum(part.height for part in self.quarantine_parts)

    def quarantine(self) -> pl.DataFrame:
        return pl.concat(self.quarantine_parts).sort(ROW)

    def add(self, result: TableOutcome, erased: int) -> None:
        self.rows_in += result.rows_in
        self.accepted += result.accepted.height
        self.duplicates_dropped += result.duplicates_dropped
        self.erased += erased
        for rule, n in result.rule_counts.items():
            self.rule_counts[rule] = self.rule_counts.get(rule, 0) + n
        self.quarantine_parts.append(result.quarantine)

    def report(self, t: Table) -> TableReport:
        """The table's counts, its rules in the contract's order (as one pass reports them)."""
        rules = {
            r.id: self.rule_counts[r.id] for r in rules_for(t.name) if r.id in self.rule_counts
        }
        return TableReport(
            rows_in=self.rows_in,
            accepted=self.accepted,
            quarantined=self.quarantined,
            duplicates_dropped=self.duplicates_dropped,
            erased=self.erased,
            rules=rules,
        )


@dataclass(frozen=True)
class TableJob:
    """One delivered table and what validating and versioning it needs: the same for a whole
    table and for each of its buckets."""

    read: ReadTable
    t: Table
    ctx: RuleContext
    known: pl.LazyFrame | None
    erased: Collection[str]
    previous: Path | None
    """The table's stored versions (None: its first delivery)."""
    extract_id: str
    extracted_at: datetime
    previously_extracted_at: datetime | None

    def outcome(self, read: ReadTable, known: pl.LazyFrame | None) -> tuple[TableOutcome, int]:
        """Validation of ``read`` (the table or a bucket), erased persons' rows dropped."""
        return without_erased(validate_table(read, self.t, self.ctx, known), self.erased)

    def versions(self, result: TableOutcome, stored: pl.LazyFrame | None) -> pl.LazyFrame:
        """`merge_versions` of the accepted rows with ``stored`` (the versions of the same
        keys: the table's or the bucket's)."""
        return merge_versions(
            stored,
            result.accepted,
            self.t,
            extract_id=self.extract_id,
            extracted_at=self.extracted_at,
            quarantined_keys=result.quarantined_keys,
            previously_extracted_at=self.previously_extracted_at,
        )


def bucketed_versions(
    job: TableJob,
    *,
    buckets: int,
    workdir: Path,
    totals: BucketedTable,
    on_bucket: Callable[[int, int], None] | None = None,
) -> Iterator[pl.DataFrame]:
    """The table's versions after this delivery, one bucket at a time (to be appended to its
    file); ``totals`` collects the counts and the quarantine as the buckets are consumed.

    ``workdir`` holds the bucket files and is removed when the generator ends or is closed."""
    t = job.t
    folder = workdir / f"ingest-{t.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        bucket = bucket_of(t, buckets)
        delivered = split_by_bucket(job.read.frame, bucket, buckets, folder / "delivered")
        stored: list[Path] | None = None
        if job.previous is not None:
            old = pl.scan_parquet(job.previous).select(stored_columns(t))
            stored = split_by_bucket(old, bucket, buckets, folder / "stored")
        known_in = known_by_bucket(job.known if t.name != "persons" else None, t, buckets)
        for k in range(buckets):
            part = ReadTable(pl.scan_parquet(delivered[k]), job.read.raw_types)
            result, erased_rows = job.outcome(part, known_in[k])
            totals.add(result, erased_rows)
            merged = job.versions(result, None if stored is None else pl.scan_parquet(stored[k]))
            del result
            yield merged.collect()
            if on_bucket is not None:
                on_bucket(k + 1, buckets)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
