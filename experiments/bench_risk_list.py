"""Benchmark (issues 5 and 9): explained risk lists for 1M simulated persons, on the population
the service serves.

    .venv/bin/python experiments/bench_risk_list.py --persons 1000000
    .venv/bin/python experiments/bench_risk_list.py --reuse var/bench/1000000  # reuse a run

Simulates and ingests (or reuses the work folder of ``bench_features.py``), builds the 64 model
inputs as of one date for the whole population, and trains a 200-tree model with the project's
`fit_lgbm` (monotone constraints from the feature spec, Platt calibration, configured tiers) on
an earlier snapshot. Then, in the same run:

1. raw TreeSHAP: LightGBM ``pred_contrib`` of that model on a sample of the rows (rows/s);
2. the service's path end to end on the **served population** (persons with a record, aged 14
   or more, as the default training config declares: `features.frames.scope`):
   `serving.scorebook.build_scorebook` (probability, tier, ranking per region and district for
   every served person, the others only counted; each unit's first 100 persons explained in one
   batch), then every unit's risk list as the service shows it (every region and district, its
   first ``--capacity`` persons, with exact contributions and reason sentences), plus
   ``--requests`` single-person explanations of random served persons;

and prints both throughputs (served persons per second end to end against raw
``pred_contrib`` rows per second on served persons) and their ratio (target >= 5x), and checks
exactness: every explained row's contributions add up to its raw score within 1e-6 and equal
``pred_contrib`` within 1e-9. ``--all`` also explains every served person (the old eager book).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import polars as pl

from features.frames.builder import Population, collect_features
from features.frames.definitions import load_spec
from features.frames.scope import PopulationScope, in_scope, scope_columns
from features.store.offline import OfflineStore
from serving.scorebook import build_scorebook
from training.calibration import fit_calibrator
from training.config import load_training_config
from training.labels import labels_for
from training.model import RiskModel, Tier, fit_lgbm, to_matrix
from training.pipeline import feature_infos, monotone_constraints

TARGET_RATIO = 5.0
PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 200,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "max_bin": 63,
    "num_boost_round": 200,
}


def train_model(
    store: OfflineStore, train_as_of: date, rows: int, seed: int
) -> tuple[RiskModel, float]:
    spec = load_spec()
    resolved = load_training_config()
    definition = resolved.label
    frame = collect_features(store, spec, [train_as_of], "all")
    frame = frame.sample(min(rows, frame.height), seed=seed, shuffle=True)
    labels = labels_for(store, frame.select("person_id", "as_of").lazy(), definition).collect()
    frame = frame.join(labels, on=["person_id", "as_of"], how="left")
    label = next(c for c in labels.columns if c not in ("person_id", "as_of"))
    inputs = spec.model_inputs()
    x = frame.select(inputs)
    y = frame[label].fill_null(0).cast(pl.Int8).to_numpy()
    started = time.perf_counter()
    half = x.height // 2
    booster = fit_lgbm(x[:half], y[:half], PARAMS, monotone_constraints(spec), seed=seed)
    raw = np.asarray(booster.predict(to_matrix(x[half:], inputs), raw_score=True))
    calibrator = fit_calibrator(1.0 / (1.0 + np.exp(-raw)), y[half:], "platt")
    model = RiskModel(
        booster=booster,
        calibrator=calibrator,
        tiers=[Tier(t.name, t.min_probability) for t in resolved.training.tiers],
        features=feature_infos(spec),
    )
    return model, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--reuse", type=Path, help="work folder of bench_features (home inside)")
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2025, 6, 30))
    parser.add_argument("--train-as-of", type=date.fromisoformat, default=date(2023, 6, 30))
    parser.add_argument("--train-rows", type=int, default=300_000)
    parser.add_argument("--raw-sample", type=int, default=20_000, help="rows for raw pred_contrib")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--retrain", action="store_true", help="do not reuse a saved model")
    parser.add_argument("--capacity", type=int, default=100, help="persons shown per unit list")
    parser.add_argument("--requests", type=int, default=1000, help="single-person reads")
    parser.add_argument("--all", action="store_true", help="also explain every served person")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)

    from experiments.bench_features import prepare

    work = args.reuse or Path("var/bench") / str(args.persons)
    prepare(work, args.persons, args.seed, reuse=True)
    store = OfflineStore(work / "home")

    saved = work / "risk-list-model"
    if (saved / "model.json").exists() and not args.retrain:
        model = RiskModel.load(saved)
        print(f"model: {model.booster.num_trees()} trees, reused from {saved}")
    else:
        model, train_s = train_model(store, args.train_as_of, args.train_rows, args.seed)
        model.save(saved)
        print(f"model: {model.booster.num_trees()} trees trained in {train_s:.1f} s")

    spec = load_spec()
    vectors = collect_features(store, spec, [args.as_of], "all")
    scope_started = time.perf_counter()
    vectors = vectors.with_columns(pl.col("person_id").cast(pl.String)).join(
        scope_columns(store, spec, [args.as_of]).drop("as_of"), on="person_id", how="left"
    )
    scope_s = time.perf_counter() - scope_started
    scope = PopulationScope.of(
        Population.WITH_RECORD, spec, load_training_config().training.min_age
    )
    directory = (
        store.scan("persons")
        .filter(pl.col("_valid_to").is_null())
        .select(pl.col("person_id").cast(pl.String), "region", "district")
        .unique("person_id")
        .collect()
    )
    served = in_scope(vectors, scope)
    n_all, n = vectors.height, served.height
    print(
        f"population: {n_all:,} persons as of {args.as_of}, {len(model.features)} inputs; "
        f"served ({scope.describe()}): {n:,}; membership computed in {scope_s:.1f} s"
    )

    matrix = to_matrix(served, model.feature_names)
    rng = np.random.default_rng(args.seed)
    sample = np.sort(rng.choice(n, size=min(args.raw_sample, n), replace=False))
    started = time.perf_counter()
    raw_contrib = model.booster.predict(matrix[sample], pred_contrib=True)
    raw_s = time.perf_counter() - started
    raw_rate = sample.size / raw_s
    print(
        f"raw pred_contrib: {sample.size:,} served rows in {raw_s:.2f} s = {raw_rate:,.0f} rows/s"
    )

    started = time.perf_counter()
    book = build_scorebook(
        model,
        vectors,
        directory,
        model_version="bench",
        materialization=str(args.as_of),
        scope=scope,
    )
    book_s = time.perf_counter() - started
    lists_started = time.perf_counter()
    shown: list[np.ndarray] = []
    listed_reasons = 0
    for region, district in sorted(book.units, key=str):
        rows = book.ranked(region, district)[: args.capacity]
        listed_reasons += sum(1 for r in book.reasons(model, rows) if r)
        shown.append(rows)
    lists_s = time.perf_counter() - lists_started
    asked = rng.choice(n, size=min(args.requests, n), replace=False)
    requests_started = time.perf_counter()
    for row in asked.tolist():
        book.contributions(np.array([row]))
    requests_s = time.perf_counter() - requests_started
    total_s = time.perf_counter() - started
    rate = n / total_s
    explained = np.unique(np.concatenate([*shown, asked]))
    print(
        f"explained risk lists: {n:,} served persons ranked in {book_s:.2f} s; "
        f"{len(shown)} unit lists of <= {args.capacity} ({explained.size:,} persons explained) "
        f"in {lists_s:.2f} s; {asked.size} single requests in {requests_s:.2f} s; "
        f"end to end {total_s:.2f} s = {rate:,.0f} served persons/s"
    )
    contrib = book.contributions(explained)
    sums = np.abs(contrib.sum(axis=1) - book.raw[explained]).max()
    # the book's row order is the served frame's: compare on the sampled served rows
    check = book.contributions(sample)
    versus = np.abs(check - raw_contrib).max()
    ratio = rate / raw_rate
    facts = {
        "persons": n_all,
        "served": n,
        "outside": book.outside,
        "trees": model.booster.num_trees(),
        "raw_rows_per_s": round(raw_rate),
        "raw_sample_rows": int(sample.size),
        "scorebook_s": round(book_s, 2),
        "unit_lists": len(shown),
        "capacity": args.capacity,
        "lists_s": round(lists_s, 2),
        "persons_explained": int(explained.size),
        "requests": int(asked.size),
        "requests_s": round(requests_s, 2),
        "end_to_end_s": round(total_s, 2),
        "served_persons_per_s": round(rate),
        "ratio": round(ratio, 1),
        "max_sum_error": float(sums),
        "max_diff_vs_pred_contrib": float(versus),
        "listed_persons_with_reasons": listed_reasons,
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 2),
        "method": book.method,
    }
    if args.all:
        everyone_started = time.perf_counter()
        book.contributions(np.arange(n))
        book.reasons(model, book.rank)
        everyone_s = time.perf_counter() - everyone_started
        facts["explain_everyone_s"] = round(everyone_s, 2)
        facts["explain_everyone_ratio"] = round(n / (book_s + everyone_s) / raw_rate, 2)
    print(json.dumps(facts, indent=2))
    ok = ratio >= TARGET_RATIO and sums <= 1e-6 and versus <= 1e-9
    print(f"target >= {TARGET_RATIO}x raw pred_contrib, exact: {'met' if ok else 'MISSED'}")
    if args.json:
        args.json.write_text(json.dumps(facts, indent=2), "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
