"""`riskcast train-table`: the model family on a third party's flat table (CSV or Parquet).

`run_train_table` is the one code path: the command calls it, and so do experiments
(`experiments/compas/run.py`) so that their figures are the command's figures.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from riskcast.errors import InputError, RiskcastError
from riskcast.settings import HOME_HELP


@dataclass(frozen=True)
class TrainTableOutcome:
    result: Any  # training.tabular.TableResult (imported lazily: the CLI starts fast)
    table: Any  # training.tabular_data.PreparedTable
    metrics: dict[str, Any]
    run_id: str | None
    ui: str | None


def split_names(values: Sequence[str] | None) -> list[str]:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]``: options may repeat or hold comma lists."""
    return [n.strip() for v in values or [] for n in v.split(",") if n.strip()]


def run_train_table(
    data: Path,
    target: str,
    *,
    protected: Sequence[str] = (),
    drop: Sequence[str] = (),
    monotone: str | Mapping[str, int] | None = None,
    folds: int = 5,
    inner_folds: int = 3,
    trials: int = 20,
    seed: int = 0,
    threads: int = 1,
    metrics_json: Path | None = None,
    mlflow_log: bool = True,
    home: Path | None = None,
    experiment: str = "train-table",
    extra_baselines: Mapping[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainTableOutcome:
    """Read, prepare, cross-validate (nested), report; see `training.tabular`."""
    from riskcast.digest import sha256_file
    from riskcast.settings import get_settings
    from training.tabular import TableOptions, train_table
    from training.tabular_data import parse_monotone, prepare_table, read_table
    from training.tabular_report import log_table_run, write_metrics_json

    for name, value, low in (("--folds", folds, 2), ("--inner-folds", inner_folds, 2)):
        if value < low:
            raise InputError(f"{name} must be at least {low}")
    if trials < 1:
        raise InputError("--trials must be at least 1")
    mono = parse_monotone(monotone) if monotone is None or isinstance(monotone, str) else monotone
    notes: list[str] = []
    raw = read_table(data, notes, drop=drop)
    table = prepare_table(
        raw,
        target,
        protected=protected,
        drop=drop,
        monotone=dict(mono),
        notes=notes,
        digest=sha256_file(data),
    )
    options = TableOptions(
        folds=folds, inner_folds=inner_folds, trials=trials, seed=seed, num_threads=threads
    )
    result = train_table(table, options, baselines=extra_baselines, progress=progress)
    metrics = result.metrics_json()
    if metrics_json is not None:
        metrics = write_metrics_json(result, metrics_json)
    run_id = ui = None
    if mlflow_log:
        run_id, ui = log_table_run(
            result,
            table,
            options,
            data=str(data),
            target=target,
            home=home or get_settings().home,
            experiment=experiment,
        )
    return TrainTableOutcome(result, table, metrics, run_id, ui)


def register(app: typer.Typer) -> None:
    """Add `train-table` to the root CLI."""

    @app.command("train-table")
    def train_table_command(
        data: Path = typer.Option(..., "--data", help="CSV or Parquet table, one row per case"),
        target: str = typer.Option(..., "--target", help="the binary outcome column (0/1)"),
        protected: list[str] | None = typer.Option(
            None, "--protected", help="columns never used as inputs; reported by group (a,b)"
        ),
        drop: list[str] | None = typer.Option(
            None, "--drop", help="columns to leave out, e.g. outcomes and other scores (a,b)"
        ),
        monotone: str | None = typer.Option(
            None, "--monotone", help="monotone constraints, e.g. priors=+1,age=-1"
        ),
        folds: int = typer.Option(5, "--folds", help="outer cross-validation folds"),
        inner_folds: int = typer.Option(3, "--inner-folds", help="inner folds for tuning"),
        trials: int = typer.Option(20, "--trials", help="Optuna trials per outer fold"),
        seed: int = typer.Option(0, "--seed", help="seed of folds, tuning and models"),
        threads: int = typer.Option(1, "--threads", help="LightGBM threads (0: all cores)"),
        metrics_json: Path | None = typer.Option(
            None, "--metrics-json", help="write outer-fold metrics as JSON to this file"
        ),
        mlflow_log: bool = typer.Option(True, "--mlflow/--no-mlflow", help="log to MLflow"),
        experiment: str = typer.Option("train-table", "--experiment", help="MLflow experiment"),
        home: Path | None = typer.Option(None, "--home", help=HOME_HELP),
    ) -> None:
        """Train riskcast's model (LightGBM + calibration) and the baselines on a flat table.

        Nested cross-validation: Optuna tuning and calibration happen inside each outer fold,
        so the outer folds' metrics are honest. Protected columns are never inputs; they get a
        calibration-within-group report. How messy columns are handled is printed first.
        """
        from training.tabular_report import group_tables, summary_table

        console = Console(stderr=True)
        out = Console()
        try:
            with console.status("preparing") as status:
                outcome = run_train_table(
                    data,
                    target,
                    protected=split_names(protected),
                    drop=split_names(drop),
                    monotone=monotone,
                    folds=folds,
                    inner_folds=inner_folds,
                    trials=trials,
                    seed=seed,
                    threads=threads,
                    metrics_json=metrics_json,
                    mlflow_log=mlflow_log,
                    home=home,
                    experiment=experiment,
                    progress=lambda msg: status.update(msg),
                )
        except RiskcastError as exc:
            console.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(exc.exit_code) from None
        for note in outcome.table.notes:
            out.print(f"[dim]data:[/] {note}", highlight=False)
        out.print(
            f"{outcome.result.y.size} rows, {len(outcome.result.features)} inputs, "
            f"positive rate {outcome.result.y.mean():.3f}"
        )
        out.print(summary_table(outcome.result))
        for table in group_tables(outcome.result):
            out.print(table)
        if metrics_json is not None:
            out.print(f"metrics: {metrics_json}")
        if outcome.run_id:
            out.print(f"MLflow run {outcome.run_id}; look with: {outcome.ui}")
