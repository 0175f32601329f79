"""Benchmark (issue 14): one as-of feature build, single machine against a Dask LocalCluster.

    .venv/bin/python experiments/bench_dask.py --persons 1000000
    .venv/bin/python experiments/bench_dask.py --reuse var/bench/1000000 --workers 2

Steps, each in a fresh child process so that its peak RSS is its own:

1. simulate (`features.simulator.simulate`: chunk by chunk, streamed to Parquet, memory
   bounded by the chunk) and ingest: `experiments/bench_features.py --phase prepare`;
2. the single-machine build (`collect_features`): `bench_features.py --phase polars`;
3. the cluster build (``--phase dask``): a `LocalCluster` of ``--workers`` process workers,
   then `write_features` (each worker writes its partitions: partitioned Parquet) and
   `collect_features` (partitions gathered in the driver). Dask's task stream gives each
   task's compute time, so the per-partition costs (split and build) are measured, not
   derived; each worker's own peak RSS is read on the worker;
4. both outputs compared value for value (`bench_features.compare`).

The machine has 2 cores shared with other jobs: a LocalCluster there cannot beat the
single-machine build (which already uses both cores); what it measures is the overhead of the
partitioned path and the per-partition costs that size a real cluster (docs/SCALE.md).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import polars as pl

from experiments.bench_features import REPO, child, compare, hwm_gb, peak_rss_gb, run_child
from features.frames.builder import collect_features, write_features
from features.frames.definitions import load_spec
from features.store.offline import OfflineStore
from riskcast import cluster


def _worker_peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _task_costs(stream: list[dict[str, Any]], prefix: str) -> list[float]:
    """Compute seconds of each task whose key starts with ``prefix`` (Dask's task stream)."""
    costs = []
    for task in stream:
        if str(task["key"]).startswith(prefix):
            spans = task["startstops"]
            costs += [s["stop"] - s["start"] for s in spans if s["action"] == "compute"]
    return sorted(round(c, 3) for c in costs)


def _load() -> list[float]:
    """The 1, 5 and 15 minute load averages now (the machine is shared: times need them)."""
    return [round(x, 2) for x in os.getloadavg()]


def run_dask(home: Path, as_of: date, workers: int, parts: int | None, out: Path) -> dict[str, Any]:
    from distributed import get_task_stream

    spec = load_spec(None)
    store = OfflineStore(home)
    started = time.perf_counter()
    with cluster.connect(f"local:{workers}", home) as opened, cluster.active(opened):
        figures: dict[str, Any] = {"cluster_start_s": round(time.perf_counter() - started, 2)}
        with get_task_stream(opened.client) as stream:
            started = time.perf_counter()
            counts = write_features(opened, store, spec, [as_of], "all", out, parts)
            figures["write_partitioned_s"] = round(time.perf_counter() - started, 2)
        figures["rows"] = int(counts["len"].sum())
        figures["split_task_s"] = _task_costs(stream.data, "riskcast-split")
        figures["build_task_s"] = _task_costs(stream.data, "riskcast-features")
        figures["partitions"] = len(figures["build_task_s"])
        started = time.perf_counter()
        frame = collect_features(store, spec, [as_of], "all")
        figures["collect_gathered_s"] = round(time.perf_counter() - started, 2)
        figures["gathered_rows"] = frame.height
        del frame
        peaks = opened.client.run(_worker_peak_gb)
        figures["worker_peak_rss_gb"] = sorted(round(v, 3) for v in peaks.values())
    figures["driver_peak_rss_gb"] = round(peak_rss_gb(), 3)
    figures["driver_vm_hwm_gb"] = hwm_gb()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--reuse", type=Path, help="work folder of an earlier run (store kept)")
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2025, 6, 30))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--parts", type=int, default=None, help="default: 2 per worker")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--phase", choices=["dask"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    work: Path = (args.reuse or REPO / "var" / "bench" / str(args.persons)).resolve()
    out = work / "features-dask.parquet"

    if args.phase == "dask":
        print(json.dumps(run_dask(work / "home", args.as_of, args.workers, args.parts, out)))
        return 0

    work.mkdir(parents=True, exist_ok=True)
    prepare = [*child("prepare", work, None, args.as_of), "--persons", str(args.persons)]
    prepare += ["--seed", str(args.seed)]
    load: dict[str, list[float]] = {"prepare": _load()}
    facts = run_child(prepare, echo=True)
    load["single"] = _load()
    single = run_child(child("polars", work, None, args.as_of))
    load["dask"] = _load()
    print(f"single machine: {single['seconds']} s, peak RSS {single['peak_rss_gb']} GB")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--phase", "dask", "--reuse", str(work)]
    cmd += ["--as-of", args.as_of.isoformat(), "--workers", str(args.workers)]
    cmd += ["--parts", str(args.parts)] if args.parts else []
    spread = run_child(cmd)
    load["end"] = _load()
    print(f"LocalCluster({args.workers}): {json.dumps(spread)}; load averages {load}")
    spec = load_spec(None)
    agree = compare(spec, work / "features-polars.parquet", out / "*.parquet")
    result = {"persons": args.persons, "as_of": str(args.as_of), "prepare": facts}
    result |= {"single": single, "dask": spread, "agree": agree, "load_at_start_of": load}
    target = REPO / "experiments" / "results" / f"bench_dask-{args.persons}.json"
    target.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    same = agree["same_entities"] and not agree["mismatches"]
    print(f"identical: {same}; figures in {target}")
    return 0 if same else 1


if __name__ == "__main__":
    pl.Config.set_tbl_rows(20)
    raise SystemExit(main())
