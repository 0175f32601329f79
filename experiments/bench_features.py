"""Benchmark (issue section 7): simulate N persons, ingest, build features as of one date with
the Polars builder, run the same spec as DuckDB SQL over the same Parquet files, compare.

    .venv/bin/python experiments/bench_features.py --persons 1000000
    .venv/bin/python experiments/bench_features.py --persons 1000000 --reuse var/bench/1000000

Each engine runs in fresh child processes (``--phase polars|duckdb``), ``--rounds`` times,
alternating because the machine may be shared (the best time is kept), so that its peak RSS
(``resource.getrusage``) is its own, not the simulator's or the ingest's. The same figure can
be taken from outside with ``/usr/bin/time -v`` on the child command the script prints.
Targets: 5M persons as of one date in <= 90 s, peak RSS <= 8 GB, faster than DuckDB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import polars as pl

from features.frames.builder import collect_features
from features.frames.definitions import FeatureSpec, load_spec
from features.store.offline import OfflineStore

REPO = Path(__file__).resolve().parents[1]
TARGET_SECONDS_5M = 90.0
TARGET_RSS_GB = 8.0
KEYS = ["person_id", "as_of"]


def peak_rss_gb() -> float:
    """This process's peak resident set size, ``getrusage`` (Linux reports kilobytes).

    Linux carries ``ru_maxrss`` over ``fork`` + ``exec``, so a child's figure is at least its
    parent's size at the fork: the orchestrating parent therefore stays small and simulation
    and ingest run in a child of their own. `hwm_gb` is the kernel's own figure for the image.
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def hwm_gb() -> float | None:
    """``VmHWM`` of /proc/self/status: the peak RSS of this process image only (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        return None
    return None


# ---- preparing the store ---------------------------------------------------------------------
SIM_START = date(2016, 1, 1)
SIM_EXTRACTED = date(2025, 12, 31)


def simulate(delivery: Path, persons: int, seed: int, synthetic: bool = False) -> str:
    """Write a delivery with the project's simulator, or the fast synthetic one if asked (or
    if the simulator is not importable)."""
    try:
        if synthetic:
            raise ImportError("synthetic requested")
        from features.simulator import simulate as run
    except ImportError:
        from experiments.synthetic_registers import write_synthetic_delivery

        write_synthetic_delivery(delivery, persons, seed)
        return "experiments.synthetic_registers"
    run(
        out=delivery,
        persons=persons,
        seed=seed,
        start=SIM_START,
        extracted_at=SIM_EXTRACTED,
        overwrite=True,
    )
    return f"features.simulator.simulate (start {SIM_START}, extracted {SIM_EXTRACTED})"


def prepare(
    work: Path, persons: int, seed: int, reuse: bool, synthetic: bool = False
) -> dict[str, Any]:
    from features.ingest import ingest_delivery

    home, delivery = work / "home", work / "delivery"
    facts: dict[str, Any] = {"persons": persons, "work": str(work)}
    if reuse and OfflineStore(home).state().deliveries:
        facts["reused"] = True
        return facts
    if not (delivery / "manifest.json").exists():
        started = time.perf_counter()
        facts["simulator"] = simulate(delivery, persons, seed, synthetic)
        facts["simulate_s"] = round(time.perf_counter() - started, 2)
        print(f"simulated {persons:,} persons in {facts['simulate_s']} s ({facts['simulator']})")
        sys.stdout.flush()
    started = time.perf_counter()
    report = ingest_delivery(delivery, home, progress=False)
    facts["ingest_s"] = round(time.perf_counter() - started, 2)
    facts["rows"] = {name: t.accepted for name, t in report.tables.items()}
    facts["ingest_peak_rss_gb"] = round(peak_rss_gb(), 3)
    print(f"ingested in {facts['ingest_s']} s: {facts['rows']}")
    return facts


# ---- the two engines (child processes) -------------------------------------------------------
def _timed(run: Any, repeat: int) -> tuple[Any, list[float]]:
    """Run ``repeat`` times; the result of the last run and every wall time."""
    times: list[float] = []
    result = None
    for _ in range(max(repeat, 1)):
        result = None  # free the previous run's frame: peak memory is one run's
        started = time.perf_counter()
        result = run()
        times.append(round(time.perf_counter() - started, 3))
    return result, times


def _figures(frame: pl.DataFrame, times: list[float]) -> dict[str, Any]:
    return {
        "seconds": min(times),
        "runs": times,
        "rows": frame.height,
        "peak_rss_gb": round(peak_rss_gb(), 3),
        "vm_hwm_gb": hwm_gb(),
    }


def run_polars(
    home: Path, spec: FeatureSpec, as_of: date, out: Path, repeat: int
) -> dict[str, Any]:
    store = OfflineStore(home)
    frame, times = _timed(lambda: collect_features(store, spec, [as_of], "all"), repeat)
    frame.write_parquet(out)
    return _figures(frame, times)


def run_duckdb(
    home: Path, spec: FeatureSpec, as_of: date, out: Path, repeat: int
) -> dict[str, Any]:
    import duckdb

    from experiments.duckdb_features import feature_sql

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET threads = {os.cpu_count() or 1}")
    sql = feature_sql(spec, OfflineStore(home), as_of)
    (out.parent / "duckdb_features.sql").write_text(sql + ";\n", encoding="utf-8")
    table, times = _timed(lambda: con.sql(sql).to_arrow_table(), repeat)
    frame = pl.DataFrame(table)
    frame.write_parquet(out)
    return _figures(frame, times)


def child(phase: str, work: Path, config: Path | None, as_of: date, repeat: int = 1) -> list[str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--phase", phase, "--reuse", str(work)]
    cmd += ["--as-of", as_of.isoformat(), "--repeat", str(repeat)]
    return cmd + (["--config", str(config)] if config else [])


def run_child(cmd: list[str], *, echo: bool = False) -> dict[str, Any]:
    """Run a phase in a fresh process; its result is the JSON on its last stdout line."""
    done = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, cwd=REPO)
    lines = done.stdout.strip().splitlines()
    if echo:
        print("\n".join(lines[:-1]))
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# ---- comparison ------------------------------------------------------------------------------
def compare(spec: FeatureSpec, left: Path, right: Path, tolerance: float = 1e-9) -> dict[str, Any]:
    """Same entities, and every feature equal (floats within ``tolerance``, nulls alike)."""
    a, b = pl.scan_parquet(left), pl.scan_parquet(right)
    sizes = pl.concat(
        [
            a.select(pl.len().alias("n"), pl.lit("polars").alias("side")),
            b.select(pl.len().alias("n"), pl.lit("duckdb").alias("side")),
            a.join(b, on=KEYS, how="inner").select(
                pl.len().alias("n"), pl.lit("both").alias("side")
            ),
        ]
    ).collect()
    counts = dict(zip(sizes["side"], sizes["n"], strict=True))
    joined = a.join(b, on=KEYS, how="inner", suffix="__duckdb")
    checks = []
    for name in spec.names:
        x, y = pl.col(name), pl.col(f"{name}__duckdb")
        differ = x.is_null() != y.is_null()
        if a.collect_schema()[name].is_float():
            differ = differ | ((x - y).abs() > tolerance * (1 + x.abs())).fill_null(False)
        else:
            differ = differ | (x != y).fill_null(False)
        checks.append(differ.sum().alias(name))
    wrong = joined.select(checks).collect(engine="streaming").row(0, named=True)
    mismatches = {k: int(v) for k, v in wrong.items() if v}
    for name in list(mismatches)[:10]:
        sample = (
            joined.filter(
                (pl.col(name).is_null() != pl.col(f"{name}__duckdb").is_null())
                | (pl.col(name) != pl.col(f"{name}__duckdb")).fill_null(False)
            )
            .select("person_id", name, f"{name}__duckdb")
            .head(3)
            .collect()
        )
        print(f"  mismatch {name}: {mismatches[name]:,} rows, e.g. {sample.rows()}")
    same_entities = counts["polars"] == counts["duckdb"] == counts["both"]
    return {"entities": counts, "same_entities": same_entities, "mismatches": mismatches}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--reuse", type=Path, help="work folder of an earlier run (store kept)")
    parser.add_argument("--work", type=Path, help="work folder (default var/bench/<persons>)")
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2025, 6, 30))
    parser.add_argument("--config", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=1, help="runs per child process")
    parser.add_argument(
        "--rounds", type=int, default=3, help="child processes per engine, alternating"
    )
    parser.add_argument("--skip-duckdb", action="store_true")
    parser.add_argument(
        "--synthetic", action="store_true", help="fast synthetic registers, not the simulator"
    )
    parser.add_argument("--phase", choices=["prepare", "polars", "duckdb"], help=argparse.SUPPRESS)
    parser.add_argument("--fresh", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    spec = load_spec(args.config)
    work: Path = (args.reuse or args.work or REPO / "var" / "bench" / str(args.persons)).resolve()

    if args.phase == "prepare":  # child: simulate and ingest, facts on the last line
        facts = prepare(work, args.persons, args.seed, not args.fresh, args.synthetic)
        print(json.dumps(facts))
        return 0
    if args.phase:  # child: one engine, result as JSON on the last line of stdout
        run = run_polars if args.phase == "polars" else run_duckdb
        out = work / f"features-{args.phase}.parquet"
        result = run(work / "home", spec, args.as_of, out, args.repeat)
        print(json.dumps(result))
        return 0

    work.mkdir(parents=True, exist_ok=True)
    prepare_cmd = [*child("prepare", work, args.config, args.as_of), "--persons", str(args.persons)]
    prepare_cmd += ["--seed", str(args.seed)] + ([] if args.reuse else ["--fresh"])
    prepare_cmd += ["--synthetic"] if args.synthetic else []
    facts = run_child(prepare_cmd, echo=True)
    facts["as_of"] = args.as_of.isoformat()
    facts["parent_peak_rss_gb"] = round(peak_rss_gb(), 3)
    facts["features"] = len(spec.features)
    facts["cpus"] = os.cpu_count()
    engines = ["polars"] if args.skip_duckdb else ["polars", "duckdb"]
    commands = {e: child(e, work, args.config, args.as_of, args.repeat) for e in engines}
    for engine, cmd in commands.items():
        print(f"{engine}: {' '.join(cmd)}")
        print(f"  peak RSS from outside: /usr/bin/time -v {' '.join(cmd)}")
    runs: dict[str, list[dict[str, Any]]] = {e: [] for e in engines}
    for _ in range(max(args.rounds, 1)):  # engines alternate, so a busy machine hits both
        for engine, cmd in commands.items():
            runs[engine].append(run_child(cmd))
            print(f"  {engine}: {runs[engine][-1]}")
    for engine, results in runs.items():
        facts[engine] = {
            "seconds": min(r["seconds"] for r in results),
            "runs": [t for r in results for t in r["runs"]],
            "rows": results[-1]["rows"],
            "peak_rss_gb": max(r["peak_rss_gb"] for r in results),
            "vm_hwm_gb": max(r["vm_hwm_gb"] or 0.0 for r in results),
        }
    facts["persons"] = facts["polars"]["rows"]  # the population at as_of (also when reused)
    if not args.skip_duckdb:
        facts["comparison"] = compare(
            spec, work / "features-polars.parquet", work / "features-duckdb.parquet"
        )
        facts["ratio_duckdb_over_polars"] = round(
            facts["duckdb"]["seconds"] / facts["polars"]["seconds"], 2
        )
    _report(facts)
    (work / "bench_features.json").write_text(json.dumps(facts, indent=2), encoding="utf-8")
    agree = args.skip_duckdb or (
        facts["comparison"]["same_entities"] and not facts["comparison"]["mismatches"]
    )
    return 0 if agree else 1


def _report(facts: dict[str, Any]) -> None:
    n = facts["persons"]
    pol = facts["polars"]
    print(f"\n=== {n:,} persons, {facts['features']} features as of {facts['as_of']} ===")
    if "ingest_s" in facts:
        print(f"ingest:           {facts['ingest_s']:8.2f} s")
    print(
        f"polars builder:   {pol['seconds']:8.2f} s   peak RSS {pol['peak_rss_gb']:.2f} GB"
        f"   (runs {pol['runs']})"
    )
    if "duckdb" in facts:
        duck = facts["duckdb"]
        print(
            f"duckdb sql:       {duck['seconds']:8.2f} s   peak RSS {duck['peak_rss_gb']:.2f} GB"
            f"   (runs {duck['runs']})"
        )
        print(f"duckdb / polars:  {facts['ratio_duckdb_over_polars']:8.2f}x")
        comp = facts["comparison"]
        verdict = "agree" if comp["same_entities"] and not comp["mismatches"] else "DISAGREE"
        print(f"comparison:       {verdict} ({comp['entities']}, mismatches {comp['mismatches']})")
    scaled = pol["seconds"] * 5_000_000 / n
    print(
        f"targets (5M): <= {TARGET_SECONDS_5M:.0f} s (linear estimate {scaled:.1f} s), "
        f"RSS <= {TARGET_RSS_GB:.0f} GB, faster than DuckDB"
    )


if __name__ == "__main__":
    sys.exit(main())
