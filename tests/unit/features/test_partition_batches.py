"""The split streams a table in batches (issue 14): each part file equals the part a
whole-table split gives (the same rows, in table order, the same types), whatever the batch
size, and a worker never needs the whole table."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
from polars.testing import assert_frame_equal

from features.frames.partition import KEY, part_name, person_bucket, split_table


def _table(rows: int) -> pl.DataFrame:
    rng = np.random.default_rng(3)
    ids = [f"P{int(i):07d}" for i in rng.integers(0, rows // 3, rows)]
    ids[5] = None  # type: ignore[call-overload]
    return pl.DataFrame(
        {
            KEY: ids,
            "day": [date(2020, 1, 1 + int(d)) for d in rng.integers(0, 28, rows)],
            "amount": rng.normal(size=rows),
            "count": pl.Series(rng.integers(0, 9, rows), dtype=pl.Int64),
            "flag": rng.random(rows) < 0.5,
        }
    ).with_row_index("row")


def _whole_table_parts(frame: pl.DataFrame, parts: int) -> list[pl.DataFrame]:
    """The reference: the whole table in memory, cut by bucket (the split before batches)."""
    bucket = pl.Series("b", person_bucket(frame[KEY], parts))
    return [frame.filter(bucket == k) for k in range(parts)]


def _split(tmp_path: Path, frame: pl.DataFrame, parts: int, batch_rows: int) -> Path:
    source = tmp_path / "table.parquet"
    frame.write_parquet(source, row_group_size=997)
    folder = tmp_path / f"split-{parts}-{batch_rows}"
    split_table(
        "t",
        read=lambda _: pl.scan_parquet(source),
        parts=parts,
        folder=str(folder),
        batch_rows=batch_rows,
    )
    return folder


def test_batched_split_equals_the_whole_table_split(tmp_path: Path) -> None:
    frame = _table(10_000)
    for parts, batch_rows in [(4, 1_000), (3, 777), (5, 50_000)]:
        folder = _split(tmp_path, frame, parts, batch_rows)
        expected = _whole_table_parts(frame, parts)
        for k in range(parts):
            assert_frame_equal(pl.read_parquet(folder / part_name(k)), expected[k])
        assert sum(pl.read_parquet(folder / part_name(k)).height for k in range(parts)) == 10_000


def test_small_batches_become_row_groups_not_a_whole_table(tmp_path: Path) -> None:
    """With batches of 1,000 rows each part gets one row group per batch that has its rows:
    the rows were written batch by batch, not gathered first."""
    folder = _split(tmp_path, _table(10_000), 2, 1_000)
    groups = [pq.ParquetFile(folder / part_name(k)).num_row_groups for k in range(2)]
    assert groups == [10, 10]


def test_empty_parts_and_empty_tables_are_still_written(tmp_path: Path) -> None:
    frame = _table(30).head(0)
    folder = _split(tmp_path, frame, 3, 10)
    for k in range(3):
        part = pl.read_parquet(folder / part_name(k))
        assert part.height == 0
        assert part.schema == frame.schema
    assert (folder / "_SUCCESS").read_text().startswith("t: 0 rows in 3 parts")
