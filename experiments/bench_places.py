"""Benchmark of the places path (issue 12, section 5): simulate, ingest, train with 30 trials,
forecast every cell for 8 weeks, and print the figures the issue asks for.

    .venv/bin/python experiments/bench_places.py                     # 100,000 persons
    .venv/bin/python experiments/bench_places.py --persons 1000000
    .venv/bin/python experiments/bench_places.py --reuse var/bench/places-100000

Prints train and forecast wall times, PAI@1/5/10 % and deviance for the model, the baselines
and the true-intensity ranking over the out-of-time weeks, the paired bootstrap interval of
PAI@5 % model − KDE, and the share of the way from KDE to the truth; and whether each target
holds (model PAI@5 % above KDE with the interval excluding 0 and at least half way to the truth;
deviance below every baseline; training < 10 min; forecast < 30 s). A JSON summary is written
beside the store.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TRAIN_TARGET_S = 600.0
FORECAST_TARGET_S = 30.0


def _prepare(out: Path, persons: int, seed: int) -> tuple[Path, Path, float]:
    """Simulate and ingest (skipped when ``out`` already holds both)."""
    from experiments.common import simulate_and_ingest

    delivery, home = out / "d1", out / "home"
    truth = out / "d1_truth"
    if (home / "store" / "state.json").is_file() and truth.is_dir():
        return home, truth, 0.0
    started = time.perf_counter()
    simulate_and_ingest(delivery, home, persons, seed, overwrite=True)
    return home, truth, time.perf_counter() - started


def _persons_in(home: Path) -> int:
    """Persons in the store (with --reuse the command line does not say how many)."""
    from features.store.offline import OfflineStore

    return int(OfflineStore(home).scan("persons").select("person_id").unique().collect().height)


def _fmt(v: Any, d: int = 2) -> str:
    return "-" if v is None or (isinstance(v, float) and v != v) else f"{float(v):.{d}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None, help="default var/bench/places-N")
    parser.add_argument("--reuse", type=Path, default=None, help="a folder from an earlier run")
    parser.add_argument(
        "--per-horizon",
        action="store_true",
        help="also fit one model per horizon (same parameters) and compare with the single one",
    )
    args = parser.parse_args(argv)
    out = args.reuse or args.out or Path("var/bench") / f"places-{args.persons}"
    out.mkdir(parents=True, exist_ok=True)
    home, truth, prep_s = _prepare(out, args.persons, args.seed)
    os.environ["RISKCAST_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)

    from training.places.forecast import forecast_cells
    from training.places.train import train_places

    print(f"store: {home} (simulate + ingest {prep_s:.1f} s)", flush=True)
    started = time.perf_counter()
    result = train_places(
        home=home,
        trials=args.trials,
        truth_dir=truth,
        progress=lambda m, f: (
            print(f"  {time.strftime('%X')} {m}", flush=True) if f is None else None
        ),
    )
    train_s = time.perf_counter() - started
    as_of = result.plan.test[-1]
    started = time.perf_counter()
    forecast = forecast_cells(home, as_of, 8, result.model_version)
    forecast_s = time.perf_counter() - started

    ev = result.evaluation
    print()
    persons = _persons_in(home)
    print(f"persons {persons:,}; trials {args.trials}; objective {result.tuning.objective}")
    print(
        f"out-of-time: {len(result.plan.test)} weeks of origins {result.plan.test[0]} .. "
        f"{as_of} (horizon 1); truth: {result.truth_note}"
    )
    print(
        f"train time: {train_s:.1f} s  ("
        + ", ".join(f"{k} {v:.1f}" for k, v in result.timings.items())
        + ")"
    )
    print(
        f"forecast time: {forecast_s:.1f} s for {forecast['cell_id'].n_unique():,} cells x 8 weeks "
        f"({forecast.height:,} rows, with intervals and reasons)"
    )
    print(f"{'scorer':8} {'PAI@1%':>8} {'PAI@5%':>8} {'PAI@10%':>8} {'PEI@5%':>8} {'deviance':>9}")
    for name, m in ev.overall.items():
        dev = "-" if name == "truth" else _fmt(m.get("deviance"), 5)
        print(
            f"{name:8} {_fmt(m.get('pai_1')):>8} {_fmt(m.get('pai_5')):>8} "
            f"{_fmt(m.get('pai_10')):>8} {_fmt(m.get('pei_5'), 3):>8} {dev:>9}"
        )
    diff = ev.differences.get("pai_5_model_minus_kde", {})
    way = ev.differences.get("pai_5_way_from_kde_to_truth", {}).get("share")
    print(
        f"PAI@5% model - KDE: {_fmt(diff.get('mean'), 3)} "
        f"[{_fmt(diff.get('low'), 3)}, {_fmt(diff.get('high'), 3)}] (paired bootstrap over weeks)"
    )
    print(f"share of the way from KDE to truth (PAI@5%): {_fmt(way, 2)}")
    devs = {k: m["deviance"] for k, m in ev.overall.items() if k != "truth"}
    checks = {
        "PAI@5% above KDE, interval excludes 0": bool(diff) and diff["low"] > 0,
        "at least half way from KDE to truth": way is not None and way >= 0.5,
        "deviance below every baseline": all(
            devs["model"] < v for k, v in devs.items() if k != "model"
        ),
        f"training < {TRAIN_TARGET_S:.0f} s": train_s < TRAIN_TARGET_S,
        f"forecast < {FORECAST_TARGET_S:.0f} s": forecast_s < FORECAST_TARGET_S,
    }
    for name, ok in checks.items():
        print(f"  [{'met' if ok else 'NOT met'}] {name}")
    horizons: list[dict[str, Any]] = []
    if args.per_horizon and result.frame is not None and result.model is not None:
        from training.places.horizons import compare_horizon_models

        table = compare_horizon_models(
            result.frame,
            list(result.plan.train),
            list(result.plan.test),
            result.model,
            result.tuning.best_params,
            seed=7,
        )
        horizons = table.to_dicts()
        print("one model (horizon as input) vs one model per horizon, test origins:")
        head = ("h", "dev single", "dev per-h", "PAI@5 single", "PAI@5 per-h")
        print(f"{head[0]:>2} {head[1]:>11} {head[2]:>10} {head[3]:>13} {head[4]:>12}")
        for r in horizons:
            print(
                f"{r['horizon']:>2} {r['deviance_single']:>11.5f} "
                f"{r['deviance_per_horizon']:>10.5f} "
                f"{r['pai_5_single']:>13.2f} {r['pai_5_per_horizon']:>12.2f}"
            )
    summary = {
        "per_horizon_models": horizons,
        "persons": persons,
        "trials": args.trials,
        "train_seconds": train_s,
        "forecast_seconds": forecast_s,
        "timings": result.timings,
        "objective": result.tuning.objective,
        "test_origins": [str(d) for d in result.plan.test],
        "overall": ev.overall,
        "differences": ev.differences,
        "coverage": ev.coverage,
        "per_horizon_deviance": ev.per_horizon_deviance,
        "checks": checks,
        "model_version": result.model_version,
        "run_id": result.run_id,
    }
    (out / "bench_places.json").write_text(json.dumps(summary, indent=2, default=str))
    print(f"summary: {out / 'bench_places.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
