"""Benchmark (issue 14): `riskcast features materialize` on one machine and on a LocalCluster.

    nice -n 10 .venv/bin/python experiments/bench_materialize.py \
        --home var/bench/nation-1000000/home --as-of 2025-06-30 --persons 1000000

Each mode runs in a fresh child process (its peak RSS its own) and writes into its own
PostgreSQL schema (``COPY``, as in production; dropped afterwards), or SQLite with
``--sqlite``:

- ``single``: `features.frames.materialization.materialize_online` with no cluster: the
  frame (features and scope columns of every person) built in the process, loaded in slices;
- ``dask``: the same inside a `LocalCluster` of ``--workers`` process workers: each worker
  builds and writes its partitions, the driver streams the part files into the store (the
  driver's peak is the point: before, it gathered the whole frame, 11.3 GB at 10M persons).
  Each worker's own peak RSS is read on it.

The parent compares the two stores' vectors (every person, every column) and prints time and
peak RSS per mode with the load averages (2 cores shared with other jobs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import polars as pl

from experiments.bench_features import REPO, run_child

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _hwm_gb() -> float:
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def _store(url: str, schema: str | None) -> Any:
    from features.online import SqlOnlineStore

    return SqlOnlineStore(url, schema=schema)


def phase(
    mode: str, home: Path, day: date, url: str, schema: str | None, workers: int
) -> dict[str, Any]:
    from features.frames.definitions import load_spec
    from features.frames.materialization import materialize_online
    from features.store.offline import OfflineStore
    from riskcast import cluster

    spec = load_spec(None)
    store = OfflineStore(home)
    online = _store(url, schema)
    started = time.perf_counter()
    worker_peaks: list[float] = []
    if mode == "single":
        done, counts = materialize_online(store, spec, day, online)
    else:
        with (
            cluster.connect(f"local:{workers}", home) as opened,
            cluster.active(opened) as session,
        ):
            done, counts = materialize_online(store, spec, day, online)
            peaks = session.client.run(_hwm_gb)
            worker_peaks = [round(float(v), 3) for v in peaks.values()]
    seconds = time.perf_counter() - started
    online.dispose()
    return {
        "mode": mode,
        "rows": done.rows,
        "parts": counts.parts,
        "with_record": counts.with_record,
        "seconds": round(seconds, 1),
        "peak_rss_gb": round(_hwm_gb(), 3),
        "worker_peak_rss_gb": worker_peaks,
    }


def _vectors(url: str, schema: str | None) -> pl.DataFrame:
    online = _store(url, schema)
    try:
        current = online.current()
        assert current is not None, f"nothing materialised in {url} {schema}"
        frame: pl.DataFrame = online.get_columns(list(current.features)).drop("written_at")
        return frame
    finally:
        online.dispose()


def _drop_schema(schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(POSTGRES)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def _create_schema(schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(POSTGRES)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2025, 6, 30))
    parser.add_argument("--persons", type=int, required=True, help="for the results file name")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sqlite", action="store_true", help="SQLite files instead of PostgreSQL")
    parser.add_argument("--phase", choices=["single", "dask"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    home = args.home.resolve()
    if args.phase:
        print(json.dumps(phase(args.phase, home, args.as_of, args.url, args.schema, args.workers)))
        return 0

    figures: dict[str, Any] = {"persons": args.persons, "as_of": str(args.as_of), "modes": {}}
    targets: dict[str, tuple[str, str | None]] = {}
    tag = uuid.uuid4().hex[:8]
    for mode in ("single", "dask"):
        if args.sqlite:
            targets[mode] = (f"sqlite:///{home.parent / f'bench-online-{mode}.sqlite'}", None)
        else:
            name = f"bench_materialize_{mode}_{tag}"
            _create_schema(name)
            targets[mode] = (POSTGRES, name)
    try:
        for mode, (url, where) in targets.items():
            load = [round(x, 2) for x in os.getloadavg()]
            cmd = [sys.executable, str(Path(__file__).resolve()), "--phase", mode]
            cmd += ["--home", str(home), "--as-of", args.as_of.isoformat(), "--persons", "0"]
            cmd += ["--workers", str(args.workers), "--url", url]
            cmd += ["--schema", where] if where else []
            result = run_child(cmd)
            result["load_start_end"] = [load, [round(x, 2) for x in os.getloadavg()]]
            figures["modes"][mode] = result
            print(f"{mode}: {json.dumps(result)}", flush=True)
        left = _vectors(*targets["single"]).sort("person_id")
        right = _vectors(*targets["dask"]).sort("person_id")
        figures["identical"] = left.equals(right, null_equal=True)
        print(f"identical vectors: {figures['identical']} ({left.height:,} rows)", flush=True)
    finally:
        for _, made in targets.values():
            if made:
                _drop_schema(made)
    out = REPO / "experiments" / "results" / f"bench_materialize-{args.persons}.json"
    out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
