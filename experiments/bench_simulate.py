"""Benchmark of the register simulator: wall time, rows per table and peak memory.

    .venv/bin/python experiments/bench_simulate.py --persons 1000000

Writes into a temporary folder (removed afterwards unless --keep) and prints the figures.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

from features.simulator import simulate


def _peak_rss_mib() -> float:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--chunk-size", type=int, default=200_000)
    parser.add_argument("--corrupt-rate", type=float, default=0.0)
    parser.add_argument("--second-delivery-at", type=date.fromisoformat, default=None)
    parser.add_argument("--out", type=Path, default=None, help="folder (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the output")
    args = parser.parse_args()

    root = args.out or Path(tempfile.mkdtemp(prefix="bench-simulate-"))
    started = time.perf_counter()

    def progress(stage: str, done: int, total: int) -> None:
        print(
            f"  {stage:8s} {done:>3}/{total:<3} {time.perf_counter() - started:7.1f} s", flush=True
        )

    try:
        result = simulate(
            root / "delivery",
            persons=args.persons,
            seed=args.seed,
            start=date(2016, 1, 1),
            extracted_at=date(2025, 12, 31),
            as_of=[date(2023, 12, 31), date(2024, 12, 31)],
            corrupt_rate=args.corrupt_rate,
            second_delivery_at=args.second_delivery_at,
            chunk_size=args.chunk_size,
            overwrite=True,
            progress=progress,
        )
        wall = time.perf_counter() - started
        size = sum(p.stat().st_size for p in result.files) / 2**20
        print(f"persons      {args.persons:,} (chunks of {args.chunk_size:,})")
        print(f"wall time    {wall:.1f} s")
        print(f"peak RSS     {_peak_rss_mib():.0f} MiB")
        print(f"written      {size:.0f} MiB in {len(result.files)} files")
        for table, rows in result.rows.items():
            print(f"  {table:16s}{rows:>12,}")
        for name, rows in sorted(result.truth_rows.items()):
            print(f"  truth/{name:10s}{rows:>12,}")
    finally:
        if not args.keep and args.out is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
