"""Feature frames on a Dask cluster: persons partitioned by a stable hash of ``person_id``.

Why this is exact: every feature of a person is computed from that person's rows only (the
table passes group by person and date; populations and derived features are per row), so the
frame of a set of persons is the whole frame restricted to them. A partition's frame is
therefore `features.frames.builder.collect_frame`, the single-machine builder itself, run on a
reader that sees only that partition's rows: there is no second implementation to drift. (The
builder hands its plan and build functions in; this module does not import it.)

Two stages, both on the workers (`riskcast.cluster.Session.run`):

1. **split**: each table the plan reads (as the snapshot reader gives it: the committed state,
   with whatever filters the store applies) is streamed in batches and cut into ``parts``
   Parquet files by `person_bucket` (a batch at a time: no worker holds a whole table),
   under the session's scratch folder on the shared home. Each row is read once; a table is
   split once per session (content-addressed by its scan plan), so the
   several builds of one command (features, then scope) share the split;
2. **build**: partition ``k``'s frame from the ``k``-th file of every table, returned to the
   driver (`collect_partitioned`) or written as ``part-<k>.parquet`` of a partitioned Parquet
   data set (`write_partitioned`).

`person_bucket` is FNV-1a (64 bit) of the id's UTF-8 bytes modulo the number of partitions:
a documented hash, the same on every machine, Python and Polars version (Polars' own ``hash``
is not stable across versions, Python's ``hash`` of a string is salted per process).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from features.frames.definitions import AS_OF
from riskcast import atomic
from riskcast.cluster import Session
from riskcast.errors import NotFoundError

SPLIT_BATCH_ROWS = 1_000_000
"""Rows a worker reads at a time when splitting a table (a few hundred MB at most)."""
PARTS_PER_WORKER = 2
"""Partitions per worker: more than one, so a slow or restarted worker holds up less work."""
FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)
KEY = "person_id"
_BUCKET = "__bucket"

Reader = Callable[[str], pl.LazyFrame]
"""All versions of a table (`features.frames.builder.TableReader`)."""
Planner = Callable[[Reader], object]
"""Plans the frame on a reader (lazy; reads no data): which tables it reads."""
Builder = Callable[[Reader], pl.DataFrame]
"""The single-machine builder on a reader (`features.frames.builder.collect_frame`)."""


def person_bucket(ids: pl.Series, parts: int) -> np.ndarray:
    """The partition (0 .. parts-1) of each id: FNV-1a 64 of its UTF-8 bytes, mod ``parts``.

    Vectorised over the ids' Arrow buffers (one pass per byte position), so hashing ten
    million ids costs about a second; a null id hashes like the empty string."""
    arrow = ids.cast(pl.String).fill_null("").to_arrow()
    array = pa.concat_arrays(arrow.chunks) if isinstance(arrow, pa.ChunkedArray) else arrow
    array = array.cast(pa.large_string())
    _, offsets_buf, data_buf = array.buffers()
    first = array.offset
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[first : first + len(array) + 1]
    data = np.frombuffer(data_buf or b"", dtype=np.uint8)
    starts, lengths = offsets[:-1], np.diff(offsets)
    hashed = np.full(len(array), FNV_OFFSET, dtype=np.uint64)
    shortest, longest = (int(lengths.min()), int(lengths.max())) if lengths.size else (0, 0)
    for position in range(shortest):  # every id has this byte: in place, no mask
        hashed ^= data[starts + position]
        hashed *= FNV_PRIME  # uint64 arithmetic wraps: FNV's mod 2^64
    for position in range(shortest, longest):
        live = np.nonzero(lengths > position)[0]
        byte = data[starts[live] + position].astype(np.uint64)
        hashed[live] = (hashed[live] ^ byte) * FNV_PRIME
    return (hashed % np.uint64(parts)).astype(np.int64)


def part_name(k: int) -> str:
    return f"part-{k:05d}.parquet"


def split_table(
    name: str, *, read: Reader, parts: int, folder: str, batch_rows: int = SPLIT_BATCH_ROWS
) -> str:
    """Cut table ``name`` into ``parts`` files by `person_bucket` (every file written, empty
    ones too, so that each partition reads a file per table); returns the folder. Runs on a
    worker; a retry rewrites the same bytes.

    The table is streamed in batches of ``batch_rows`` (in table order), each batch's rows
    appended to their part's file as a row group: the worker holds one batch and the open
    writers, never the whole table (at 10M persons, social_status alone is 30M rows). Each
    part holds its rows in table order, as a whole-table split would."""
    target = Path(folder)
    if (target / "_SUCCESS").exists():
        return folder
    lazy = read(name)
    schema = pl.DataFrame(schema=lazy.collect_schema()).to_arrow().schema
    target.mkdir(parents=True, exist_ok=True)
    staged = [target / f".{part_name(k)}.{os.getpid()}.tmp" for k in range(parts)]
    writers = [pq.ParquetWriter(path, schema, compression="zstd") for path in staged]
    rows = 0
    try:
        for batch in lazy.collect_batches(chunk_size=batch_rows, engine="streaming"):
            rows += batch.height
            for k, part in _bucketed(batch, parts):
                writers[k].write_table(part.to_arrow().cast(schema))
        for writer in writers:
            writer.close()
        for k, path in enumerate(staged):
            with atomic.replacing(target / part_name(k)) as tmp:
                os.replace(path, tmp)  # fsynced and renamed over the part by `replacing`
    finally:
        for writer, path in zip(writers, staged, strict=True):
            writer.close()
            path.unlink(missing_ok=True)
    atomic.write_text(target / "_SUCCESS", f"{name}: {rows} rows in {parts} parts\n")
    return folder


def _bucketed(batch: pl.DataFrame, parts: int) -> list[tuple[int, pl.DataFrame]]:
    """The non-empty parts of one batch, by `person_bucket`, each in batch order."""
    bucket = pl.Series(_BUCKET, person_bucket(batch[KEY], parts))
    groups = batch.with_columns(bucket).partition_by(_BUCKET, as_dict=True, include_key=False)
    return sorted((int(key[0]), part) for key, part in groups.items())


def build_partition(
    k: int, *, inputs: dict[str, str], build: Builder, out: str | None = None
) -> pl.DataFrame:
    """Partition ``k``'s feature frame by the single-machine builder (sorted by as_of and
    person); written to ``out``/part-k.parquet when ``out`` is given, and then only its row
    count per as_of is returned. Runs on a worker."""

    def read(name: str) -> pl.LazyFrame:
        folder = inputs.get(name)
        if folder is None:
            raise NotFoundError(f"table {name!r} has not been delivered to the store")
        return pl.scan_parquet(Path(folder) / part_name(k))

    frame = build(read).sort(AS_OF, KEY)
    if out is None:
        return frame
    with atomic.replacing(Path(out) / part_name(k)) as tmp:
        frame.write_parquet(tmp, compression="zstd", statistics=True)
    return frame.group_by(AS_OF).len()


def split_inputs(session: Session, read: Reader, plan: Planner, parts: int) -> dict[str, str]:
    """Stage 1: the tables the plan reads, each split into ``parts`` files on the workers.

    The plan is made once in the driver with a recording reader (lazy: no data is read) to
    learn which tables it needs; a table never delivered stays absent, as in the store."""
    needed: dict[str, str] = {}

    def recording(name: str) -> pl.LazyFrame:
        frame = read(name)
        plan = frame.explain(optimized=False)  # names the files and every filter the store adds
        digest = hashlib.sha256(f"{name}\n{parts}\n{plan}".encode()).hexdigest()[:24]
        needed[name] = str(session.scratch / "inputs" / digest)
        return frame

    plan(recording)
    names = sorted(needed)
    folders = [needed[name] for name in names]
    session.run(
        _split_one,
        list(zip(names, folders, strict=True)),
        name="riskcast-split",
        read=read,
        parts=parts,
    )
    return needed


def _split_one(item: tuple[str, str], *, read: Reader, parts: int) -> str:
    name, folder = item
    return split_table(name, read=read, parts=parts, folder=folder)


def partitions_for(session: Session) -> int:
    return session.workers * PARTS_PER_WORKER


def collect_partitioned(
    session: Session, read: Reader, plan: Planner, build: Builder, parts: int | None = None
) -> pl.DataFrame:
    """`collect_features` on the cluster: every partition built on a worker, gathered here
    and sorted by (as_of, person_id) (the same rows and values as the single machine)."""
    parts = parts or partitions_for(session)
    inputs = split_inputs(session, read, plan, parts)
    frames = session.run(
        build_partition, list(range(parts)), name="riskcast-features", inputs=inputs, build=build
    )
    return pl.concat(frames, how="vertical").sort(AS_OF, KEY)


def write_partitioned(
    session: Session,
    read: Reader,
    plan: Planner,
    build: Builder,
    out: Path,
    parts: int | None = None,
) -> pl.DataFrame:
    """The feature frame as a partitioned Parquet data set: folder ``out`` with one
    ``part-<k>.parquet`` per partition, each written by its worker (nothing is gathered but
    the row counts, returned per as_of). The parts go to a fresh folder beside ``out`` that
    replaces it only when all are written: a failed build leaves the previous ``out``."""
    parts = parts or partitions_for(session)
    inputs = split_inputs(session, read, plan, parts)
    staging = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        counts = session.run(
            build_partition,
            list(range(parts)),
            name="riskcast-features",
            inputs=inputs,
            build=build,
            out=str(staging),
        )
        _swap(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return pl.concat(counts).group_by(AS_OF).agg(pl.col("len").sum()).sort(AS_OF)


def _swap(staging: Path, out: Path) -> None:
    """Replace ``out`` (a file or a folder) by the folder ``staging``."""
    old = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.old")
    if out.exists():
        os.replace(out, old)
    os.replace(staging, out)
    if old.is_dir():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink(missing_ok=True)


__all__ = [
    "collect_partitioned",
    "person_bucket",
    "split_table",
    "write_partitioned",
]
