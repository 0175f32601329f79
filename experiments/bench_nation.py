"""Benchmark (issue 14 §2): a national-size delivery, every step, time and peak RSS per step.

    nice -n 10 .venv/bin/python experiments/bench_nation.py --persons 1000000
    nice -n 10 .venv/bin/python experiments/bench_nation.py --persons 10000000 --steps simulate

Steps, each in a fresh child process (so that its peak RSS is its own; ``VmHWM`` is reset
between the parts of a step, so each part's peak is its own too):

1. ``simulate``: `features.simulator.simulate`, chunk by chunk (200k persons), streamed to
   Parquet; the RSS is sampled after every chunk and every places year;
2. ``ingest``: `features.ingest.ingest_delivery` into a fresh store;
3. ``single``: one as-of feature build of everyone on one machine (`bench_features`);
4. ``cluster``: the same build on a `LocalCluster` of 2 workers, compared value for value
   (`bench_dask`);
5. ``train``: the training path of `riskcast train` on the full ``with_record`` stack of
   ``configs/training.yaml`` (26 quarterly snapshots: dataset, final fit on every tuning row,
   calibration), with fixed parameters instead of the Optuna search (no tuning at 10M), and
   the test AUC as a sanity check;
6. ``score``: everyone scored by the model in batches of 1M rows (bounded memory:
   probability and tier for every person of the nation), and the service's score book as the
   service builds it (`serving.bookkeeper.population_vectors`, then
   `serving.scorebook.build_scorebook`): the population's membership (`scope_columns`) of
   everyone, only the model's population's vectors read, scored, ranked and listed.

Figures go to ``experiments/results/bench_nation-<persons>.json`` after every step (a run can
be resumed with ``--steps``), with the load averages at the start and end of each step: the
machine has 2 cores shared with other jobs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import polars as pl

from experiments.bench_features import REPO, SIM_EXTRACTED, SIM_START, compare, run_child

STEPS = ("simulate", "ingest", "single", "cluster", "train", "score")
AS_OF = date(2025, 6, 30)  # the as-of of the builds and the score book
SCORE_BATCH = 1_000_000
FIXED: dict[str, Any] = {  # the final fit's parameters (no search at this size)
    "learning_rate": 0.1,
    "num_leaves": 31,
    "min_child_samples": 200,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "max_bin": 63,
    "num_boost_round": 200,
}


# ---- memory of this process ------------------------------------------------------------------
def _status(key: str) -> float:
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def _reset_peak() -> None:
    """Reset ``VmHWM`` to the current RSS (Linux ``clear_refs`` 5): the next part's own peak."""
    Path("/proc/self/clear_refs").write_text("5", encoding="utf-8")


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class Parts:
    """Time and peak RSS of each part of a step, measured in this process."""

    def __init__(self) -> None:
        self.figures: dict[str, Any] = {}

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        _reset_peak()
        started = time.perf_counter()
        out = fn()
        self.figures[name] = {
            "seconds": round(time.perf_counter() - started, 2),
            "peak_rss_gb": round(_status("VmHWM"), 3),
            "rss_after_gb": round(_status("VmRSS"), 3),
        }
        print(f"  {name}: {self.figures[name]}", flush=True)
        return out


# ---- the steps (child processes) -------------------------------------------------------------
def step_simulate(work: Path, persons: int, seed: int) -> dict[str, Any]:
    from features.simulator import simulate

    samples: list[tuple[str, int, float, float]] = []
    started = time.perf_counter()

    def progress(stage: str, done: int, total: int) -> None:
        elapsed = time.perf_counter() - started
        samples.append((stage, done, round(elapsed, 1), round(_status("VmRSS"), 3)))
        if stage == "persons" and (done % 10 == 0 or done == total):
            print(f"  {stage} {done}/{total} {elapsed:.0f} s, RSS {samples[-1][3]} GB", flush=True)

    _reset_peak()
    result = simulate(
        out=work / "delivery",
        persons=persons,
        seed=seed,
        start=SIM_START,
        extracted_at=SIM_EXTRACTED,
        overwrite=True,
        progress=progress,
    )
    persons_rss = [s[3] for s in samples if s[0] == "persons"]
    return {
        "seconds": round(result.seconds, 1),
        "peak_rss_gb": round(_status("VmHWM"), 3),
        "rss_after_first_chunk_gb": persons_rss[0],
        "rss_after_last_chunk_gb": persons_rss[-1],
        "rss_max_during_persons_gb": max(persons_rss),
        "chunks": len(persons_rss),
        "seconds_persons": [s[2] for s in samples if s[0] == "persons"][-1],
        "rows": result.rows,
        "bytes": sum(p.stat().st_size for p in result.delivery.iterdir()),
    }


def step_ingest(work: Path) -> dict[str, Any]:
    import shutil

    from features.ingest import ingest_delivery
    from features.ingest.buckets import BUCKET_ROWS

    home = work / "home"
    if home.exists():
        shutil.rmtree(home)
    parts = Parts()
    report = parts.run("ingest", lambda: ingest_delivery(work / "delivery", home))
    figures = parts.figures["ingest"]
    figures["rows"] = {name: t.accepted for name, t in report.tables.items()}
    figures["bucket_rows"] = BUCKET_ROWS  # larger tables are ingested in buckets
    return dict(figures)


def _fixed_tuning() -> Any:
    from training.tuning import TuneResult

    return TuneResult(best_params=dict(FIXED), best_value=float("nan"), metric="log_loss")


def stack_by_date(store: Any, plan: Any) -> Any:
    """The training stack one snapshot at a time, concatenated (rows stay sorted by as_of,
    then person_id): what `load_dataset` builds, holding one date's persons at a time."""
    from dataclasses import replace

    from training.dataset import add_extra_inputs, build_dataset

    cfg = plan.cfg
    parts = [
        build_dataset(
            store, plan.spec, [d], cfg.population, plan.resolved.label, cfg.label, cfg.min_age
        )
        for d in plan.split.used
    ]
    frame = pl.concat([part.frame for part in parts])
    return add_extra_inputs(replace(parts[0], frame=frame), cfg.extra_inputs)


def step_train(work: Path, stack: str) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score

    from features.frames.definitions import load_spec
    from features.store.offline import OfflineStore
    from training.config import load_training_config
    from training.steps.data import load_dataset, prepare_training_data
    from training.steps.fit import calibrate_model, fit_booster
    from training.steps.plan import plan_training

    resolved = load_training_config(None)
    plan = plan_training(resolved, load_spec(None))
    store = OfflineStore(work / "home")
    parts = Parts()
    build = stack_by_date if stack == "by-date" else load_dataset
    dataset = parts.run("dataset", lambda: build(store, plan))
    data = prepare_training_data(plan, dataset)
    tuned = _fixed_tuning()
    booster = parts.run("fit", lambda: fit_booster(plan, data, tuned))
    fitted = parts.run("calibrate", lambda: calibrate_model(plan, data, tuned, booster))
    test = data.rows(plan.split.test)
    p = fitted.model.predict_proba(dataset.x(test))
    fitted.model.save(work / "model")
    rows = {k: v.height for k, v in data.period_rows(plan).items()}
    frame = dataset.frame
    return {
        "parts": parts.figures,
        "population": str(plan.cfg.population),
        "stack_built": stack,
        "dataset_digest": dataset.digest,
        "snapshots": len(plan.split.used),
        "stack_rows": frame.height,
        "stack_gb": round(frame.estimated_size() / 1024**3, 3),
        "period_rows": rows,
        "features": len(dataset.features),
        "threads": data.threads,
        "params": FIXED,
        "calibration": fitted.calibration.as_dict(),
        "test_auc": round(float(roc_auc_score(dataset.y(test), p)), 4),
        "seconds": round(sum(f["seconds"] for f in parts.figures.values()), 2),
        "peak_rss_gb": max(f["peak_rss_gb"] for f in parts.figures.values()),
    }


def step_score(work: Path, model_dir: Path, book_everyone: bool) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from features.frames.definitions import load_spec
    from features.frames.scope import PopulationScope, scope_columns, split_scope
    from features.store.offline import OfflineStore
    from serving.scorebook import build_scorebook
    from training.config import load_training_config
    from training.model import RiskModel, assign_tiers

    spec = load_spec(None)
    store = OfflineStore(work / "home")
    model = RiskModel.load(model_dir)
    cfg = load_training_config(None).training
    scope = PopulationScope.of(cfg.population, spec, cfg.min_age)
    frame_path = work / "features-polars.parquet"  # everyone as of AS_OF (step single)
    parts = Parts()
    figures: dict[str, Any] = {}

    def everyone() -> dict[str, Any]:
        """The model on every person, a batch of rows at a time (bounded memory)."""
        source = pq.ParquetFile(frame_path)
        tiers: dict[str, int] = {}
        n, total = 0, 0.0
        columns = ["person_id", *model.feature_names]
        for batch in source.iter_batches(batch_size=SCORE_BATCH, columns=columns):
            rows = pl.from_arrow(batch)
            assert isinstance(rows, pl.DataFrame)
            p = model.predict_proba(rows.select(model.feature_names))
            names, counts = np.unique(assign_tiers(p, model.tiers), return_counts=True)
            for tier, count in zip(names.tolist(), counts.tolist(), strict=True):
                tiers[str(tier)] = tiers.get(str(tier), 0) + int(count)
            n, total = n + rows.height, total + float(p.sum())
        return {"scored": n, "mean_probability": round(total / max(n, 1), 5), "tiers": tiers}

    figures["everyone"] = parts.run("score_everyone_batched", everyone)

    directory = (
        store.scan("persons")
        .filter(pl.col("_valid_to").is_null())
        .select(pl.col("person_id").cast(pl.String), "region", "district")
        .unique("person_id")
        .collect()
    )
    columns = ["person_id", *model.feature_names]

    def book(vectors: pl.DataFrame, outside: pl.DataFrame | None) -> dict[str, Any]:
        made = build_scorebook(
            model,
            vectors,
            directory,
            model_version="bench",
            materialization=str(AS_OF),
            outside=outside,
        )
        return {
            "scored": int(made.probability.size),
            "outside": made.outside,
            "units": len(made.units),
            "values_gb": round(made.values.nbytes / 1024**3, 3),
            "vectors_gb": round(vectors.estimated_size() / 1024**3, 3),
        }

    def served() -> dict[str, Any]:
        """As `serving.bookkeeper.population_vectors` serves it: the scope decided on the
        narrow membership columns of everyone, then only the population's vectors read."""
        members = scope_columns(store, spec, [AS_OF]).drop("as_of")
        inside, outside = split_scope(members, scope)
        vectors = (
            pl.scan_parquet(frame_path)
            .select(columns)
            .with_columns(pl.col("person_id").cast(pl.String))
            .join(inside.lazy().select("person_id"), on="person_id", how="semi")
            .collect()
        )
        return book(vectors, outside)

    figures["served_book"] = parts.run("score_book_served", served)
    if book_everyone:  # every person's vectors in the book (no scope): the upper bound

        def everyone_book() -> dict[str, Any]:
            vectors = pl.read_parquet(frame_path, columns=columns)
            return book(vectors.with_columns(pl.col("person_id").cast(pl.String)), None)

        figures["everyone_book"] = parts.run("score_book_everyone", everyone_book)
    return {
        "parts": parts.figures,
        **figures,
        "model": str(model_dir),
        "seconds": round(sum(f["seconds"] for f in parts.figures.values()), 2),
        "peak_rss_gb": max(f["peak_rss_gb"] for f in parts.figures.values()),
    }


# ---- orchestration ---------------------------------------------------------------------------
def _child(step: str, work: Path, args: argparse.Namespace) -> list[str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--phase", step, "--work", str(work)]
    cmd += ["--persons", str(args.persons), "--seed", str(args.seed)]
    cmd += ["--stack", args.stack, "--model", str(args.model or work / "model")]
    return cmd + (["--book-everyone"] if args.book_everyone else [])


def _run_step(step: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    from experiments.bench_features import child

    if step == "single":
        figures = run_child(child("polars", work, None, AS_OF))
    elif step == "cluster":
        cmd = [sys.executable, str(REPO / "experiments" / "bench_dask.py"), "--phase", "dask"]
        cmd += ["--reuse", str(work), "--as-of", AS_OF.isoformat(), "--workers", "2"]
        figures = run_child(cmd)
        from features.frames.definitions import load_spec

        out = work / "features-dask.parquet" / "*.parquet"
        figures["agree"] = compare(load_spec(None), work / "features-polars.parquet", out)
    else:
        figures = run_child(_child(step, work, args), echo=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, help="default var/bench/nation-<persons>")
    parser.add_argument("--steps", default=",".join(STEPS), help="comma-separated, in order")
    parser.add_argument(
        "--book-everyone", action="store_true", help="also a score book of every person"
    )
    parser.add_argument(
        "--stack",
        choices=["all", "by-date"],
        default="all",
        help="training stack: every snapshot in one build (`load_dataset`) or one at a time",
    )
    parser.add_argument("--model", type=Path, help="model folder to score with (default: trained)")
    parser.add_argument(
        "--results",
        type=Path,
        help="figures file (default experiments/results/bench_nation-<persons>.json)",
    )
    parser.add_argument("--phase", choices=STEPS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    work: Path = (args.work or REPO / "var" / "bench" / f"nation-{args.persons}").resolve()

    if args.phase:  # child: one step, its figures as JSON on the last line
        run: dict[str, Callable[[], dict[str, Any]]] = {
            "simulate": lambda: step_simulate(work, args.persons, args.seed),
            "ingest": lambda: step_ingest(work),
            "train": lambda: step_train(work, args.stack),
            "score": lambda: step_score(work, args.model or work / "model", args.book_everyone),
        }
        print(json.dumps(run[args.phase]()))
        return 0

    work.mkdir(parents=True, exist_ok=True)
    default = REPO / "experiments" / "results" / f"bench_nation-{args.persons}.json"
    target: Path = args.results or default
    result: dict[str, Any] = {"persons": args.persons, "as_of": str(AS_OF), "steps": {}}
    if target.exists():
        result = json.loads(target.read_text(encoding="utf-8"))
    for step in [s.strip() for s in args.steps.split(",") if s.strip()]:
        if step not in STEPS:
            parser.error(f"unknown step {step}")
        print(f"{step} ({args.persons:,} persons), load {_load()}", flush=True)
        load_start = _load()
        started = time.perf_counter()
        figures = _run_step(step, work, args)
        figures["wall_s"] = round(time.perf_counter() - started, 1)
        figures["load_start_end"] = [load_start, _load()]
        key = f"{step}_by_date" if step == "train" and args.stack == "by-date" else step
        result["steps"][key] = figures
        target.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"{step}: {json.dumps(figures)[:600]}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
