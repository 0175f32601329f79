"""What `train-table` shows and keeps: the summary table, the plots and the MLflow run.

The run is logged through `training.tracking` (same store as `riskcast train`: the SQLite file
under ``RISKCAST_HOME`` unless ``MLFLOW_TRACKING_URI`` says otherwise). A cross-validated run
has no single model to register, so it logs metrics, plots and reports only.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from rich.table import Table

from riskcast import atomic
from training.evaluation import plot_calibration, plot_capture, plot_roc
from training.tabular import MODEL, TableOptions, TableResult
from training.tabular_data import PreparedTable

HEADLINE = ("auc", "brier", "log_loss", "ece", "capture_top_10", "accuracy")


def summary_table(result: TableResult, title: str = "outer folds: mean ± sd") -> Table:
    """Models as rows, headline metrics as columns (mean ± sd over the outer folds)."""
    table = Table(title=title)
    table.add_column("model")
    for key in HEADLINE:
        table.add_column(key, justify="right")
    for name, stats in result.summary().items():
        table.add_row(name, *(f"{stats[k]:.3f}±{stats[k + '_sd']:.3f}" for k in HEADLINE))
    return table


def group_tables(result: TableResult) -> list[Table]:
    """One table per protected column: calibration within its groups."""
    out = []
    for col, frame in result.calibration_by_group().items():
        table = Table(title=f"calibration within {col} (pooled out-of-fold)")
        for c in frame.columns:
            table.add_column(c, justify="left" if c == "group" else "right")
        for row in frame.iter_rows():
            table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row))
        out.append(table)
    return out


def figures(result: TableResult) -> dict[str, Figure]:
    """Calibration, ROC and capture plots of the pooled out-of-fold scores."""
    scores = {name: result.oof[name] for name in result.model_names}
    return {
        "calibration": plot_calibration(result.y, scores),
        "roc": plot_roc(result.y, scores),
        "capture": plot_capture(result.y, scores),
    }


def write_metrics_json(result: TableResult, path: Path) -> dict[str, Any]:
    """Write the ``--metrics-json`` document (atomically and durably: `riskcast.atomic`)."""
    doc = result.metrics_json()
    atomic.write_text(path, json.dumps(doc, indent=2, default=_jsonable) + "\n")
    return doc


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def log_table_run(
    result: TableResult,
    table: PreparedTable,
    options: TableOptions,
    *,
    data: str,
    target: str,
    home: Path,
    experiment: str = "train-table",
) -> tuple[str, str]:
    """Log the run to MLflow; returns ``(run_id, ui command)``."""
    import mlflow
    import mlflow.data

    from training.tracking import ensure_experiment, git_commit, tracking_session, tracking_uri
    from training.tracking import ui_command as ui

    uri = tracking_uri(home)
    summary = result.summary()
    metrics = {
        f"{name}.{key}": value
        for name, stats in summary.items()
        for key, value in stats.items()
        if np.isfinite(value)
    }
    for name, cmp in result.compare(options.bootstrap, options.seed).items():
        metrics[f"{MODEL}_minus_{name}.auc"] = cmp["auc_difference"]
        metrics[f"{MODEL}_minus_{name}.auc_sd"] = cmp["sd"]
    params = {
        "data": data,
        "target": target,
        "folds": options.folds,
        "inner_folds": options.inner_folds,
        "trials": options.trials,
        "seed": options.seed,
        "n_rows": int(result.y.size),
        "n_features": len(result.features),
        "protected": ",".join(result.groups) or "-",
        "monotone": json.dumps(table.monotone) if table.monotone else "-",
    }
    with tracking_session(uri) as client:
        experiment_id = ensure_experiment(client, experiment, home, uri)
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"train-table {target}") as run:
            mlflow.set_tags(
                {
                    "riskcast.kind": "train-table",
                    "riskcast.git_commit": git_commit(),
                    "riskcast.data_sha256": table.digest or "-",
                }
            )
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
            dataset = table.frame.with_columns(label=result.y)
            with warnings.catch_warnings():  # "source can be interpreted in multiple ways"
                warnings.simplefilter("ignore", UserWarning)
                source = mlflow.data.from_polars(  # type: ignore[attr-defined]
                    dataset,
                    source=data,
                    targets="label",
                    name=Path(data).name,
                    digest=(table.digest or "")[:16] or None,
                )
            mlflow.log_input(source, context="cross-validation")
            mlflow.log_metrics(metrics)
            for name, fig in figures(result).items():
                mlflow.log_figure(fig, f"plots/{name}.png")
            mlflow.log_dict(result.metrics_json(), "metrics.json")
            mlflow.log_dict(
                {"folds": [f.__dict__ for f in result.folds], "tuning": result.tuning},
                "folds.json",
            )
            mlflow.log_dict(result.descriptions, "baselines.json")
            mlflow.log_dict({"features": result.features, "source": table.source}, "inputs.json")
            mlflow.log_text("\n".join(result.notes) + "\n", "data-handling.txt")
            for col, frame in result.calibration_by_group().items():
                mlflow.log_text(frame.write_csv(), f"calibration_by_{col}.csv")
            run_id = str(run.info.run_id)
    return run_id, ui(uri, home)
