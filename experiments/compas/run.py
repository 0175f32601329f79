"""Broward County (COMPAS) experiment: reference models and riskcast's model, same outer folds.

    .venv/bin/python experiments/compas/run.py                # full run (~3 min, 2 cores)
    .venv/bin/python experiments/compas/run.py --trials 3 --no-mlflow --no-write   # smoke

Steps: ProPublica's filter (asserts 6,172 rows); features known at screening
(`experiments/compas/features.py`, which documents the leakage rules) written to
``$RISKCAST_HOME/compas/screening-features.csv``; riskcast through the very code path of
``riskcast train-table`` (`training.tabular_cli.run_train_table`) with race protected; the
reference models (COMPAS's decile score, logistic regressions on age and priors and on the
Dressel & Farid features) on the same stratified outer folds; riskcast's out-of-fold
probabilities audited beside COMPAS (`experiments/compas/beside.py`, scored table written to
``$RISKCAST_HOME/compas/riskcast-beside-compas.csv``). Writes ``results.json`` and the
results block of ``README.md`` (between the markers) in this folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import polars as pl

from experiments.compas.beside import (
    audit_beside_compas,
    beside_json,
    beside_markdown,
    scored_table,
)
from experiments.compas.features import (
    DATA,
    FILTERED_ROWS,
    HERE,
    MONOTONE,
    PROTECTED,
    TARGET,
    load_raw,
    propublica_filter,
    screening_features,
)
from riskcast.settings import get_settings
from training.baselines import LogisticBaseline
from training.evaluation import binary_metrics
from training.tabular import MODEL, outer_splits
from training.tabular_cli import TrainTableOutcome, run_train_table

README = HERE / "README.md"
RESULTS = HERE / "results.json"
START, END = "<!-- results:start -->", "<!-- results:end -->"
DRESSEL_FARID = [
    "sex_male",
    "juv_fel_count",
    "juv_misd_count",
    "juv_other_count",
    "priors_count",
    "charge_felony",
]  # + age: the 7 features of Dressel & Farid


def reference_frame(filtered: pl.DataFrame, features: pl.DataFrame) -> pl.DataFrame:
    """Inputs of the published reference models: published ``age`` and age at screening."""
    return pl.DataFrame(
        {
            "age_published": filtered["age"],
            "age_at_screening": features["age_at_screening"],
            "sex_male": (filtered["sex"] == "Male").cast(pl.Int8),
            "juv_fel_count": filtered["juv_fel_count"],
            "juv_misd_count": filtered["juv_misd_count"],
            "juv_other_count": filtered["juv_other_count"],
            "priors_count": filtered["priors_count"],
            "charge_felony": (filtered["c_charge_degree"] == "F").cast(pl.Int8),
            "decile_score": filtered["decile_score"],
        }
    )


REFERENCES: dict[str, tuple[str, list[str] | None]] = {
    "compas_decile": ("COMPAS decile score (1-10) as the score", None),
    "lr_age_priors": (
        "logistic regression: age (published column), priors",
        ["age_published", "priors_count"],
    ),
    "lr_age_priors_at_screening": (
        "logistic regression: age at screening, priors",
        ["age_at_screening", "priors_count"],
    ),
    "lr_dressel_farid": (
        "logistic regression, Dressel & Farid's 7 features (published age)",
        ["age_published", *DRESSEL_FARID],
    ),
    "lr_dressel_farid_at_screening": (
        "logistic regression, Dressel & Farid's 7 features (age at screening)",
        ["age_at_screening", *DRESSEL_FARID],
    ),
}


def reference_models(
    frame: pl.DataFrame, y: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]]
) -> dict[str, dict[str, float]]:
    """AUC and Brier (mean, sd over the outer folds) of each reference model."""
    out: dict[str, dict[str, float]] = {}
    for name, (_, cols) in REFERENCES.items():
        aucs, briers = [], []
        for train, test in splits:
            if cols is None:  # a score, not a probability: AUC only
                p = frame["decile_score"].to_numpy()[test].astype(np.float64) / 10.0
                aucs.append(binary_metrics(y[test], p)["auc"])
                continue
            model = LogisticBaseline(cols, []).fit(frame[train], y[train])
            m = binary_metrics(y[test], model.predict_proba(frame[test]))
            aucs.append(m["auc"])
            briers.append(m["brier"])
        out[name] = {"auc": float(np.mean(aucs)), "auc_sd": float(np.std(aucs, ddof=1))}
        if briers:
            out[name] |= {
                "brier": float(np.mean(briers)),
                "brier_sd": float(np.std(briers, ddof=1)),
            }
    return out


def results_markdown(results: dict[str, Any]) -> str:
    """The README block: one table of models, one of calibration within race, and (when
    ``beside_compas`` holds `audit_beside_compas`'s typed result) riskcast beside COMPAS."""
    opts = results["options"]
    lines = [
        f"Rows after ProPublica's filter: **{results['rows']:,}** (positive rate "
        f"{results['positive_rate']:.3f}). {opts['folds']} stratified outer folds (seed "
        f"{opts['seed']}); riskcast tuned with {opts['trials']} Optuna trials on "
        f"{opts['inner_folds']} inner folds and calibrated inside each outer fold. "
        "Mean ± sd over the outer folds.",
        "",
        "| model | AUC | Brier |",
        "|---|---|---|",
    ]
    for name, ref in results["references"].items():
        brier = f"{ref['brier']:.3f} ± {ref['brier_sd']:.3f}" if "brier" in ref else "–"
        lines.append(
            f"| {REFERENCES[name][0]} | {ref['auc']:.3f} ± {ref['auc_sd']:.3f} | {brier} |"
        )
    rc = results["riskcast"]
    labels = {
        "logistic": "riskcast baseline: logistic regression, all screening features",
        "points_scale": "riskcast baseline: points scale (≤ 6 factors, 0-3 points)",
    }
    for name, b in rc["baselines"].items():
        lines.append(
            f"| {labels.get(name, name)} | {b['auc']:.3f} ± {b['auc_sd']:.3f} | "
            f"{b['brier']:.3f} ± {b['brier_sd']:.3f} |"
        )
    lines.append(
        f"| **riskcast: LightGBM + calibration (nested CV), no race, no COMPAS "
        f"score** | **{rc['auc']:.3f} ± {rc['auc_sd']:.3f}** | "
        f"{rc['brier']:.3f} ± {rc['brier_sd']:.3f} |"
    )
    lines += [
        "",
        f"riskcast: accuracy at 0.5 {rc['accuracy']:.3f}, ECE {rc['ece']:.3f}, "
        f"log loss {rc['log_loss']:.3f}. Paired bootstrap on the pooled out-of-fold "
        "scores, AUC(riskcast) − AUC(baseline): "
        + "; ".join(
            f"{n} {c['auc_difference']:+.3f} (sd {c['sd']:.3f})"
            for n, c in results["comparisons"].items()
        )
        + ".",
        "",
        "Calibration within race (pooled out-of-fold probabilities; decile gap = mean "
        "|mean predicted − observed| over 10 equal-frequency bins of the group's scores; "
        "gap if calibrated = the gap a perfectly calibrated model would still show on a group "
        "of that size, from sampling noise alone; target: decile gap ≤ 0.03):",
        "",
        "| race | n | mean predicted | observed | decile gap | gap if calibrated "
        "| calibration slope |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rc["calibration_by_group"][PROTECTED]:
        lines.append(
            f"| {row['group']} | {row['n']} | {row['mean_predicted']:.3f} | "
            f"{row['observed']:.3f} | {row['decile_gap']:.3f} | "
            f"{row['gap_if_calibrated']:.3f} | {row['calibration_slope']:.2f} |"
        )
    lines += ["", f"Command: `{results['command']}`"]
    if "beside_compas" in results:
        lines.append(beside_markdown(results["beside_compas"]))
        lines += ["", f"Scored table: `{results['beside_compas']['scored_table']}`"]
    return "\n".join(lines)


def update_readme(block: str, path: Path = README) -> None:
    text = path.read_text(encoding="utf-8")
    head, sep, rest = text.partition(START)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise SystemExit(f"{path}: markers {START} / {END} not found")
    path.write_text(f"{head}{START}\n{block}\n{END}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--inner-folds", type=int, default=3)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n-boot", type=int, default=500, help="bootstrap resamples (audit)")
    ap.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    ap.add_argument("--no-write", action="store_true", help="leave README.md/results.json")
    args = ap.parse_args(argv)

    filtered = propublica_filter(load_raw(DATA))
    assert filtered.height == FILTERED_ROWS, f"filter gave {filtered.height} rows"
    features = screening_features(filtered)
    work = get_settings().home / "compas"
    work.mkdir(parents=True, exist_ok=True)
    table_path = work / "screening-features.csv"
    features.write_csv(table_path)
    monotone = ",".join(f"{k}={v:+d}" for k, v in MONOTONE.items())
    command = (
        f"riskcast train-table --data {table_path} --target {TARGET} --protected "
        f"{PROTECTED} --monotone {monotone} --folds {args.folds} --inner-folds "
        f"{args.inner_folds} --trials {args.trials} --seed {args.seed}"
    )
    print(f"{filtered.height} rows; riskcast: {command}", flush=True)
    outcome: TrainTableOutcome = run_train_table(
        table_path,
        TARGET,
        protected=[PROTECTED],
        monotone=monotone,
        folds=args.folds,
        inner_folds=args.inner_folds,
        trials=args.trials,
        seed=args.seed,
        threads=args.threads,
        mlflow_log=not args.no_mlflow,
        experiment="compas",
        progress=lambda msg: print(f"  {msg}", flush=True) if "trial" not in msg else None,
    )
    y = outcome.result.y
    assert y.size == filtered.height  # same rows, same order: the same outer folds
    splits = outer_splits(y, args.folds, args.seed)
    references = reference_models(reference_frame(filtered, features), y, splits)
    scored = scored_table(
        filtered[PROTECTED].to_numpy(), y, outcome.result.oof[MODEL],
        filtered["decile_score"].to_numpy(),
    )  # fmt: skip
    assert (outcome.result.groups[PROTECTED] == filtered[PROTECTED].to_numpy()).all()
    scored_path = work / "riskcast-beside-compas.csv"
    scored.write_csv(scored_path)
    beside = audit_beside_compas(scored, n_boot=args.n_boot, seed=args.seed)
    beside["scored_table"] = str(scored_path)
    results: dict[str, Any] = {
        "rows": int(y.size),
        "positive_rate": float(y.mean()),
        "options": {
            "folds": args.folds,
            "inner_folds": args.inner_folds,
            "trials": args.trials,
            "seed": args.seed,
        },
        "inputs": outcome.result.features,
        "data_handling": outcome.table.notes,
        "references": references,
        "riskcast": outcome.metrics,
        "comparisons": outcome.result.compare(200, args.seed),
        "folds": [
            {
                "fold": f.index,
                "auc": f.metrics[MODEL]["auc"],
                "calibration": f.calibration,
                "best_params": f.best_params,
            }
            for f in outcome.result.folds
        ],
        "beside_compas": beside,
        "mlflow_run": outcome.run_id,
        "command": command,
    }
    block = results_markdown(results)
    print(block)
    results["beside_compas"] = beside_json(beside)  # what results.json holds
    if not args.no_write:
        RESULTS.write_text(json.dumps(results, indent=2, default=float) + "\n", encoding="utf-8")
        update_readme(block)
    return results


if __name__ == "__main__":
    main()
