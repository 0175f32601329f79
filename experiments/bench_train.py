"""Benchmark (issue 3, section 6): train on a 1M-person simulated delivery, quarterly snapshots.

    .venv/bin/python experiments/bench_train.py --persons 1000000 --trials 30
    .venv/bin/python experiments/bench_train.py --reuse var/bench/1000000/delivery --trials 30

Simulates (or reuses a delivery folder the simulator wrote, its truth beside it), ingests into a
fresh ``RISKCAST_HOME`` under ``--work`` and runs the same `training.pipeline.train` as
``riskcast train`` with ``configs/training.yaml``. Prints the wall time of training, training
rows x features, the test metrics of the model, the baselines and the oracle, the paired
bootstrap SD of the AUC differences, and checks the targets: model beats each baseline by more
than 2 SD, ECE <= 0.01, mean predicted within 5 % of observed, train <= 10 min. Writes
``bench_train.json`` in the work folder.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from datetime import date
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from features.ingest import ingest_delivery
from features.simulator import simulate, truth_folder
from training.pipeline import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--reuse", type=Path, help="an existing delivery folder (truth beside)")
    parser.add_argument(
        "--truth", type=Path, default=None, help="truth manifest (default: the simulator's)"
    )
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--config", type=Path, default=None)
    opts = parser.parse_args()
    work = (opts.work or Path("var") / "bench_train" / str(opts.persons)).resolve()
    work.mkdir(parents=True, exist_ok=True)
    delivery = opts.reuse.resolve() if opts.reuse else work / "delivery"
    truth = opts.truth or truth_folder(delivery)  # the simulator knows where it wrote it
    if not opts.reuse:
        if delivery.exists():
            print(f"reusing {delivery}")
        else:
            started = time.perf_counter()
            simulate(
                delivery,
                persons=opts.persons,
                seed=opts.seed,
                start=date(2016, 1, 1),
                extracted_at=date(2025, 12, 31),
                as_of=[date(2024, 12, 31)],
            )
            print(f"simulated {opts.persons:,} persons in {time.perf_counter() - started:.0f} s")
    home = work / "home"
    if home.exists():
        shutil.rmtree(home)
    started = time.perf_counter()
    ingest_delivery(delivery, home)
    print(f"ingested in {time.perf_counter() - started:.0f} s")

    started = time.perf_counter()
    result = train(
        home=home,
        config=opts.config,
        trials=opts.trials,
        truth_dir=truth,
        progress=lambda message, _f: print(
            f"  [{time.perf_counter() - started:6.0f} s] {message}", flush=True
        ),
    )
    wall = time.perf_counter() - started
    test = result.evaluation.test
    print(
        f"\ntrain wall time {wall:.0f} s ("
        + ", ".join(f"{k} {v:.0f} s" for k, v in result.timings.items())
        + ")"
    )
    rows = result.rows
    print(
        f"rows: tune {rows['tune']:,}, calibrate {rows['calibrate']:,}, test {rows['test']:,}"
        f" x {result.n_features} features; calibration {result.calibration}"
    )
    print(
        f"{'scorer':<20}{'AUC':>8}{'PR-AUC':>8}{'Brier':>9}{'ECE':>8}{'top10%':>8}"
        f"{'mean p':>9}{'observed':>9}"
    )
    for name, m in test.items():
        print(
            f"{name:<20}{m['auc']:8.4f}{m['pr_auc']:8.4f}{m['brier']:9.5f}{m['ece']:8.4f}"
            f"{m['capture_top_10']:8.3f}{m['mean_predicted']:9.4f}{m['observed_rate']:9.4f}"
        )
    checks = {}
    for name, d in result.evaluation.auc_differences.items():
        print(
            f"AUC(model) - AUC({name}) = {d['mean']:+.4f}, "
            f"paired bootstrap SD {d['sd']:.4f} ({d['z']:.1f} SD)"
        )
        checks[f"beats {name} by > 2 SD"] = d["z"] > 2
    model = test["model"]
    checks["ECE <= 0.01"] = model["ece"] <= 0.01
    rel = abs(model["mean_predicted"] - model["observed_rate"]) / model["observed_rate"]
    checks[f"mean predicted within 5% of observed ({rel:.1%})"] = rel <= 0.05
    checks["train <= 600 s"] = wall <= 600
    if "oracle" in test:
        print(
            f"oracle: AUC {test['oracle']['auc']:.4f}, Brier {test['oracle']['brier']:.5f}; "
            f"gap {result.evaluation.oracle_gap}"
        )
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    print(f"run {result.run_id}, {result.model_name} v{result.model_version}\n{result.ui_command}")
    (work / "bench_train.json").write_text(
        json.dumps(
            {
                "wall_seconds": wall,
                "timings": result.timings,
                "rows": rows,
                "features": result.n_features,
                "test": test,
                "auc_differences": result.evaluation.auc_differences,
                "oracle_gap": result.evaluation.oracle_gap,
                "checks": checks,
                "best_params": result.tuning.best_params,
                "run_id": result.run_id,
            },
            indent=2,
            default=str,
        )
    )


if __name__ == "__main__":
    main()
