"""Benchmark (issue 14): the ingest of one delivery whole and in buckets, time and memory.

    nice -n 10 .venv/bin/python experiments/bench_ingest_buckets.py \
        --delivery var/bench/nation-1000000/delivery --bucket-rows 400000

Each ingest runs in a fresh child process into its own empty home: once with every table
validated whole (``bucket_rows`` above the largest table), once with ``--bucket-rows`` (the
tables above it cut into buckets of their version key, `features.ingest.buckets`). Printed per
run: wall seconds, CPU seconds of the child (user + system: the work done, which the load of
this shared 2-core machine does not inflate as it does the wall time), peak RSS, and whether
the two stores hold the same rows.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import polars as pl

from experiments.bench_features import REPO, run_child

WHOLE = 10**12  # more rows than any table: nothing is cut


def phase(delivery: Path, home: Path, bucket_rows: int) -> dict[str, Any]:
    from features.ingest import ingest_delivery

    if home.exists():
        shutil.rmtree(home)
    started = time.perf_counter()
    report = ingest_delivery(delivery, home, bucket_rows=bucket_rows)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "bucket_rows": bucket_rows,
        "wall_s": round(seconds, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_gb": round(usage.ru_maxrss / 1024**2, 3),
        "rows": {name: t.rows_in for name, t in report.tables.items()},
    }


def same_rows(left: Path, right: Path) -> bool:
    from features.store.offline import OfflineStore

    a, b = OfflineStore(left), OfflineStore(right)
    sa_, sb = a.state(), b.state()
    for name in sa_.tables:
        x = pl.scan_parquet(a.root / sa_.tables[name])
        y = pl.scan_parquet(b.root / sb.tables[name])
        if x.select(pl.len()).collect().item() != y.select(pl.len()).collect().item():
            return False
        if (
            x.join(y, on=x.collect_schema().names(), how="anti", nulls_equal=True)
            .select(pl.len())
            .collect()
            .item()
        ):
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--delivery", type=Path, required=True)
    parser.add_argument("--bucket-rows", type=int, default=4_000_000)
    parser.add_argument("--work", type=Path, default=REPO / "var" / "bench" / "ingest-buckets")
    parser.add_argument("--phase", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    delivery = args.delivery.resolve()
    if args.phase is not None:
        print(json.dumps(phase(delivery, args.work.resolve(), args.phase)))
        return 0
    runs: dict[str, Any] = {}
    for name, rows in (("whole", WHOLE), ("buckets", args.bucket_rows)):
        home = (args.work / name).resolve()
        cmd = [sys.executable, str(Path(__file__).resolve()), "--delivery", str(delivery)]
        cmd += ["--work", str(home), "--phase", str(rows)]
        runs[name] = run_child(cmd)
        print(f"{name}: {json.dumps(runs[name])}", flush=True)
    same = same_rows(args.work / "whole", args.work / "buckets")
    print(f"same rows in every table: {same}")
    cpu = runs["buckets"]["cpu_s"] / max(runs["whole"]["cpu_s"], 1e-9)
    rss = runs["buckets"]["peak_rss_gb"] / max(runs["whole"]["peak_rss_gb"], 1e-9)
    print(f"buckets / whole: CPU x{cpu:.2f}, peak RSS x{rss:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
