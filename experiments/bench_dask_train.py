"""Benchmark (issue 14): `riskcast train` single machine against a Dask LocalCluster.

    nice -n 10 .venv/bin/python experiments/bench_dask_train.py --persons 200000 --trials 8

Steps, each in a fresh child process so that its peak RSS is its own:

1. simulate and ingest a delivery (`experiments.common.simulate_and_ingest`, the dates every
   experiment uses) into ``var/bench/dask-train-<N>/store-home`` (kept: ``--persons`` of an
   earlier run reuses it);
2. ``--phase single``: a copy of the store in a fresh home (no MLflow, no Optuna study), then
   `training.pipeline.train` with ``configs/training.yaml`` and ``--trials``, as
   ``riskcast train`` runs it;
3. ``--phase dask``: the same in another fresh home inside a `LocalCluster` of ``--workers``
   process workers (`riskcast.cluster.connect` + `active`, what ``RISKCAST_DASK_SCHEDULER=
   local:N`` opens): the snapshots built per partition on the workers, the trials run as Dask
   tasks, the final fit by ``lightgbm.dask``. Each worker's own peak RSS is read on it;
4. each child scores its registered model on the out-of-time test rows rebuilt from the store
   (`fairness.audit.rebuild_test_frame`, as the audit does); the parent compares: each AUC,
   the bootstrap sd of the single machine's AUC, the paired bootstrap sd of the difference.

With ``--trials`` at most the config's ``startup_trials`` (8) every trial is drawn by the
seeded random sampler, so both paths try the same parameters and the difference between the
two models is the final fit's (lightgbm.dask against lgb.train) and nothing else.

The machine has 2 cores shared with other jobs: the load averages are recorded per step.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

REPO = Path(__file__).resolve().parents[1]
MODEL = "recidivism-risk"
BOOT = 1000


def _peak_gb() -> float:
    """This process's peak RSS (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _fresh_home(work: Path, name: str) -> Path:
    home = work / name
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(work / "store-home" / "store", home / "store")
    return home


def _train(home: Path, trials: int, truth: Path) -> dict[str, Any]:
    """Train in ``home`` and score the registered version on its rebuilt test rows."""
    from fairness.audit import load_version, rebuild_test_frame
    from training.pipeline import train

    started = time.perf_counter()
    result = train(home=home, trials=trials, truth_dir=truth)
    seconds = time.perf_counter() - started
    ctx = load_version(MODEL, result.model_version, home=home)
    test, digest = rebuild_test_frame(ctx, home)
    scored = test.select("person_id", "as_of", "label").with_columns(
        ctx.model.predict(test)["probability"]
    )
    scored.write_parquet(home / "test-scores.parquet")
    return {
        "seconds": round(seconds, 1),
        "timings_s": {k: round(v, 1) for k, v in result.timings.items()},
        "rows": result.rows,
        "features": result.n_features,
        "test_digest": digest,
        "logged_test_auc": result.evaluation.test["model"]["auc"],
        "rounds": result.tuning.best_params["num_boost_round"],
        "trials": [
            {k: t.get(k) for k in ("number", "state", "value", "params", "dask_worker")}
            for t in result.tuning.summary["trials"]
        ],
        "scores": str(home / "test-scores.parquet"),
    }


def phase_single(work: Path, trials: int) -> dict[str, Any]:
    out = _train(_fresh_home(work, "home-single"), trials, work / "delivery_truth")
    out["driver_peak_rss_gb"] = round(_peak_gb(), 3)
    return out


def phase_dask(work: Path, trials: int, workers: int) -> dict[str, Any]:
    from riskcast import cluster

    home = _fresh_home(work, "home-dask")
    started = time.perf_counter()
    with cluster.connect(f"local:{workers}", home) as opened, cluster.active(opened):
        start_s = time.perf_counter() - started
        out = _train(home, trials, work / "delivery_truth")
        peaks = opened.client.run(_peak_gb)
    out["cluster_start_s"] = round(start_s, 1)
    out["worker_peak_rss_gb"] = sorted(round(v, 3) for v in peaks.values())
    out["driver_peak_rss_gb"] = round(_peak_gb(), 3)
    return out


def phase_prepare(work: Path, persons: int, seed: int) -> dict[str, Any]:
    from experiments.common import simulate_and_ingest

    started = time.perf_counter()
    simulate_and_ingest(work / "delivery", work / "store-home", persons, seed, overwrite=True)
    return {"seconds": round(time.perf_counter() - started, 1), "peak_rss_gb": round(_peak_gb(), 3)}


def compare(single: dict[str, Any], spread: dict[str, Any]) -> dict[str, Any]:
    """AUC of each model on the same test rows, the bootstrap sd of the single machine's AUC
    and the paired bootstrap sd of the difference."""
    a = pl.read_parquet(single["scores"])
    b = pl.read_parquet(spread["scores"])
    joined = a.join(b, on=["person_id", "as_of"], suffix="_dask", how="inner")
    assert joined.height == a.height == b.height, "the two test sets differ"
    y = joined["label"].to_numpy()
    p_a, p_b = joined["probability"].to_numpy(), joined["probability_dask"].to_numpy()
    rng = np.random.default_rng(0)
    alone, diffs = [], []
    for _ in range(BOOT):
        idx = rng.integers(0, y.size, y.size)
        if 0 < y[idx].sum() < y.size:
            auc_a = roc_auc_score(y[idx], p_a[idx])
            alone.append(auc_a)
            diffs.append(roc_auc_score(y[idx], p_b[idx]) - auc_a)
    auc_a, auc_b = float(roc_auc_score(y, p_a)), float(roc_auc_score(y, p_b))
    sd = float(np.std(alone, ddof=1))
    return {
        "test_rows": int(y.size),
        "auc_single": round(auc_a, 5),
        "auc_dask": round(auc_b, 5),
        "difference": round(auc_b - auc_a, 5),
        "bootstrap_sd_auc_single": round(sd, 5),
        "paired_bootstrap_sd_difference": round(float(np.std(diffs, ddof=1)), 5),
        "within_sd": abs(auc_b - auc_a) < sd,
        "max_abs_probability_difference": round(float(np.abs(p_a - p_b).max()), 5),
    }


def _brief(step: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in step.items() if k != "trials"})


def _child(args: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    done = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, cwd=REPO)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--persons", type=int, default=200_000)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--phase", choices=["prepare", "single", "dask"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    work = (REPO / "var" / "bench" / f"dask-train-{args.persons}").resolve()

    if args.phase == "prepare":
        print(json.dumps(phase_prepare(work, args.persons, args.seed)))
        return 0
    if args.phase == "single":
        print(json.dumps(phase_single(work, args.trials)))
        return 0
    if args.phase == "dask":
        print(json.dumps(phase_dask(work, args.trials, args.workers)))
        return 0

    work.mkdir(parents=True, exist_ok=True)
    load: dict[str, list[float]] = {}
    prepared: dict[str, Any] = {"reused": True}
    if not (work / "store-home" / "store").exists():
        load["prepare"] = _load()
        prepared = _child(["--phase", "prepare", "--persons", str(args.persons)])
        print(f"simulate + ingest: {prepared}", flush=True)
    common = ["--persons", str(args.persons), "--trials", str(args.trials)]
    load["single"] = _load()
    single = _child(["--phase", "single", *common])
    print(f"single machine: {_brief(single)}", flush=True)
    load["dask"] = _load()
    spread = _child(["--phase", "dask", *common, "--workers", str(args.workers)])
    print(f"LocalCluster({args.workers}): {_brief(spread)}", flush=True)
    load["end"] = _load()
    same_trials = [t["params"] for t in single["trials"]] == [t["params"] for t in spread["trials"]]
    figures = compare(single, spread)
    print(f"comparison: {json.dumps(figures)}; same trial parameters: {same_trials}")
    print(f"load averages (1, 5, 15 min) at the start of each step: {load}")
    result = {
        "persons": args.persons,
        "trials": args.trials,
        "workers": args.workers,
        "prepare": prepared,
        "single": single,
        "dask": spread,
        "same_trial_parameters": same_trials,
        "comparison": figures,
        "load_at_start_of": load,
    }
    target = REPO / "experiments" / "results" / f"bench_dask_train-{args.persons}.json"
    target.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"figures in {target}")
    return 0 if figures["within_sd"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
