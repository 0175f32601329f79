"""Benchmark: ingest a synthetic delivery of N persons, then a later one with corrections.

    .venv/bin/python experiments/bench_ingest.py --persons 1000000 --out var/bench-ingest

The first delivery comes from `experiments/synthetic_registers.py`; the second repeats it a month
later with ~1% of persons corrected and ~1% of rows of every other table deleted, so that the
versioning path (anti-joins on key and row hash) runs at full size. Prints wall time, CPU time and
peak RSS (of the whole process, generation included) of each ingest as JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import time
from datetime import timedelta
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import polars as pl

from experiments.synthetic_registers import EXTRACTED_AT, synthetic_tables
from features.ingest import ingest_delivery
from tests.factories import write_delivery


def _later(tables: dict[str, pl.DataFrame], seed: int) -> dict[str, pl.DataFrame]:
    out: dict[str, pl.DataFrame] = {}
    for name, frame in tables.items():
        pick = pl.int_range(pl.len()).hash(seed) % 100 == 0
        if name == "persons":
            region = pl.when(pick).then(pl.lit("KAR")).otherwise(pl.col("region"))
            out[name] = frame.with_columns(region.alias("region"))
        else:
            out[name] = frame.filter(~pick)
    return out


def _measure(delivery: Path, home: Path) -> dict[str, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    report = ingest_delivery(delivery, home)
    return {
        "status": report.status,
        "rows_in": report.totals.rows_in,
        "wall_s": round(time.perf_counter() - wall, 1),
        "cpu_s": round(time.process_time() - cpu, 1),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("var/bench-ingest"))
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    first = synthetic_tables(args.persons, args.seed)
    d1 = write_delivery(args.out / "d1", first, extract_id="d1", extracted_at=EXTRACTED_AT)
    d2 = write_delivery(
        args.out / "d2",
        _later(first, args.seed),
        extract_id="d2",
        extracted_at=EXTRACTED_AT + timedelta(days=31),
    )
    del first
    results = {
        "persons": args.persons,
        "first": _measure(d1, args.out / "home"),
        "second": _measure(d2, args.out / "home"),
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
