"""`make demo`: the main job end to end on the embedded defaults, through the real CLI.

Simulates a delivery (with a few injected bad rows so the ingest report shows the quarantine),
ingests it, builds point-in-time features, materializes the online store, reads a few vectors
back, trains (a few Optuna trials; MLflow run + `challenger` version), audits the challenger,
promotes it through the fairness gate (an auditor's recorded override if the gate refuses),
verifies the ledger and prints a short summary with the headline metrics and the report's
path. Everything lives under ``$RISKCAST_HOME/demo`` (default ``./var/demo``), which is reset
at the start so the demo can be rerun.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.table import Table

from features.online.store import open_online_store
from features.settings import Settings

console = Console()


def run(step: str, *args: str, env: dict[str, str], ok_codes: tuple[int, ...] = (0,)) -> float:
    """Run one riskcast command as a user would, echoing it; fail loudly if it fails."""
    command = [str(Path(sys.executable).parent / "riskcast"), *args]
    console.rule(f"[bold]{step}")
    console.print("$ riskcast " + " ".join(args), style="dim")
    started = time.perf_counter()
    result = subprocess.run(command, env=env, check=False)
    if result.returncode not in ok_codes:
        console.print(f"[red]step '{step}' failed with exit code {result.returncode}")
        sys.exit(result.returncode)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--trials", type=int, default=4, help="Optuna trials of the training")
    options = parser.parse_args()

    base = Path(os.environ.get("RISKCAST_HOME", "var")).resolve()
    home = base / "demo"
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    env = {**os.environ, "RISKCAST_HOME": str(home)}
    env.pop("RISKCAST_DATABASE_URL", None)  # the embedded default: SQLite under home
    delivery = home / "deliveries" / "2025-12"
    features_file = home / "features" / "with_record-2024-12-31.parquet"
    report_file = home / "ingest-report.json"

    timings = {
        "simulate": run(
            "1. simulate national registers",
            "simulate",
            "--out",
            str(delivery),
            "--persons",
            str(options.persons),
            "--seed",
            str(options.seed),
            "--start",
            "2016-01-01",
            "--extracted-at",
            "2025-12-31",
            "--as-of",
            "2024-12-31",
            "--corrupt-rate",
            "0.005",
            env=env,
        ),
        "ingest": run(
            "2. ingest the delivery",
            "ingest",
            str(delivery),
            "--report-json",
            str(report_file),
            env=env,
        ),
        "features build": run(
            "3. point-in-time features as of 2024-12-31 (persons with a record)",
            "features",
            "build",
            "--as-of",
            "2024-12-31",
            "--population",
            "with_record",
            "--out",
            str(features_file),
            env=env,
        ),
        "materialize": run(
            "4. materialize the latest vectors into the online store",
            "features",
            "materialize",
            "--as-of",
            "2025-12-31",
            env=env,
        ),
        "train": run(
            "5. train: out-of-time tuning, calibration, baselines, MLflow run + registry",
            "train",
            "--trials",
            str(options.trials),
            "--truth",
            str(delivery.parent / f"{delivery.name}_truth"),
            env=env,
        ),
    }
    version = challenger_version(home)
    timings["audit"] = run(
        "6. audit the challenger on its out-of-time test snapshot (groups, intersections, CIs)",
        "audit",
        version,
        "--by",
        "demo",
        env=env,
    )
    timings["promote"] = run(
        "7. promote through the gate (moves `champion` only on pass; refusals are recorded)",
        "promote",
        version,
        "--by",
        "demo",
        "--reason",
        "demo: first model on this delivery",
        env=env,
        ok_codes=(0, 1),
    )
    if champion_version(home) != version:
        timings["override"] = run(
            "7b. the gate refused: an auditor overrides, with a written reason (recorded as such)",
            "promote",
            version,
            "--by",
            "demo-auditor",
            "--role",
            "auditor",
            "--override",
            "--reason",
            "demo only: refusal reviewed, the model is not used on real people",
            env=env,
        )
    timings["ledger"] = run("8. verify the promotion ledger", "ledger", "verify", env=env)
    summarize(home, delivery, features_file, report_file, timings)
    headline(home)
    report = home / "reports" / f"recidivism-risk-v{version}" / "fairness-report.html"
    console.print(f"fairness report: [bold]{report}[/]")


def summarize(
    home: Path, delivery: Path, features_file: Path, report_file: Path, timings: dict[str, float]
) -> None:
    console.rule("[bold]summary")
    report = json.loads(report_file.read_text(encoding="utf-8"))
    totals = {
        k: sum(t[k] for t in report["tables"].values())
        for k in ("rows_in", "accepted", "quarantined", "duplicates_dropped")
    }
    console.print(
        f"ingest [bold]{report['extract_id']}[/]: {totals['rows_in']:,} rows in, "
        f"{totals['accepted']:,} accepted, {totals['quarantined']:,} quarantined, "
        f"{totals['duplicates_dropped']:,} exact duplicates dropped"
    )
    frame = pl.read_parquet(features_file)
    truth = pl.read_parquet(delivery.parent / f"{delivery.name}_truth" / "labels.parquet")
    joined = frame.select("person_id", "as_of").join(truth, on=["person_id", "as_of"])
    label_rate = float(joined["label"].cast(pl.Float64).mean() or 0.0)  # type: ignore[arg-type]
    mean_p_true = float(joined["p_true"].mean() or 0.0)  # type: ignore[arg-type]
    console.print(
        f"features: {frame.height:,} persons with a record as of 2024-12-31, "
        f"{frame.width - 2} columns; their true 12-month registered re-offence rate "
        f"(simulator truth) is {label_rate:.1%}, mean p_true {mean_p_true:.1%}"
    )
    store = open_online_store(Settings(home=home, database_url=None))
    sample = frame["person_id"].head(3).to_list()
    vectors = store.get_vectors(sample)
    current = store.current()
    if current is None:
        console.print("[red]the online store is empty after materialize")
        sys.exit(1)
    console.print(
        f"online store ({store.where}): {current.rows:,} vectors of {len(current.features)} "
        f"model inputs as of {current.as_of}, spec {current.spec_hash}"
    )
    table = Table(title="three vectors read back from the online store (first columns)")
    shown = [vectors.columns[0], *vectors.columns[4:10]]
    for column in shown:
        table.add_column(column)
    for row in vectors.select(shown).iter_rows():
        table.add_row(*(str(v) for v in row))
    console.print(table)
    for step, seconds in timings.items():
        console.print(f"  {step:<15} {seconds:6.1f} s")
    console.print(f"everything is under {home}")


def _client(home: Path) -> Any:
    from mlflow import MlflowClient

    uri = f"sqlite:///{(home / 'mlflow.db').resolve()}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def challenger_version(home: Path) -> str:
    return str(_client(home).get_model_version_by_alias("recidivism-risk", "challenger").version)


def champion_version(home: Path) -> str | None:
    try:
        return str(_client(home).get_model_version_by_alias("recidivism-risk", "champion").version)
    except Exception:  # no champion yet
        return None


def headline(home: Path) -> None:
    """The challenger's headline out-of-time metrics, read back from MLflow."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{(home / 'mlflow.db').resolve()}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = client.get_model_version_by_alias("recidivism-risk", "challenger")
    metrics = client.get_run(str(version.run_id)).data.metrics
    table = Table(title=f"recidivism-risk v{version.version} (challenger): test snapshot")
    for column in ("scorer", "AUC", "Brier", "ECE", "top-10% capture", "mean p", "observed"):
        table.add_column(column)
    for scorer in ("model", "logistic", "points", "oracle"):
        if f"test.{scorer}.auc" not in metrics:
            continue
        m = {
            k: metrics[f"test.{scorer}.{k}"]
            for k in ("auc", "brier", "ece", "capture_top_10", "mean_predicted", "observed_rate")
        }
        table.add_row(
            scorer,
            f"{m['auc']:.3f}",
            f"{m['brier']:.4f}",
            f"{m['ece']:.4f}",
            f"{m['capture_top_10']:.3f}",
            f"{m['mean_predicted']:.4f}",
            f"{m['observed_rate']:.4f}",
        )
    console.print(table)
    console.print(f"run {version.run_id}: mlflow ui --backend-store-uri {uri}")


if __name__ == "__main__":
    main()
