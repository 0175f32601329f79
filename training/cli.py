"""`riskcast train`: the whole training stage with a progress display (`training.pipeline` runs
the steps of `training.steps`)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from riskcast.settings import HOME_HELP, get_settings, use_home
from training.progress import print_registered, progress_bar


def register(app: typer.Typer) -> None:
    """Add `train` to the root CLI."""
    app.command("train")(train_command)


def train_command(
    config: Path | None = typer.Option(
        None,
        "--config",
        help="training file; default $RISKCAST_CONFIG_DIR, ./configs, then the repository's "
        "configs/",
    ),
    trials: int | None = typer.Option(
        None, "--trials", min=1, help="Optuna trials (total); default: the config's"
    ),
    features_config: Path | None = typer.Option(
        None, "--features-config", help="feature file; default: as --config"
    ),
    truth: Path | None = typer.Option(
        None,
        "--truth",
        help="truth manifest, or a folder holding truth-manifest.json (oracle metrics); "
        "default: the config's truth_dir (none: no oracle)",
    ),
    home: Path | None = typer.Option(None, "--home", help=HOME_HELP, callback=use_home),
) -> None:
    """Train on the store: out-of-time tuning, calibration, baselines, evaluation; log the run
    to MLflow and register it as the `challenger` version of the model."""
    from training.pipeline import train  # heavy imports only when the command runs
    from training.tracking import PICKLE_NOTE

    home = get_settings().home
    with progress_bar() as progress:
        result = train(
            home=home,
            config=config,
            features_config=features_config,
            trials=trials,
            truth_dir=truth,
            progress=progress,
        )
    out = Console(soft_wrap=True)  # long lines (paths, the `mlflow ui` command) stay whole
    table = Table(title=f"out-of-time test metrics ({result.rows['test']:,} rows)")
    for column in ("scorer", "AUC", "PR-AUC", "Brier", "ECE", "top-10%", "mean p", "observed"):
        table.add_column(column, justify="right" if column != "scorer" else "left")
    for name, m in result.evaluation.test.items():
        table.add_row(
            name,
            f"{m['auc']:.4f}",
            f"{m['pr_auc']:.4f}",
            f"{m['brier']:.4f}",
            f"{m['ece']:.4f}",
            f"{m['capture_top_10']:.3f}",
            f"{m['mean_predicted']:.4f}",
            f"{m['observed_rate']:.4f}",
        )
    out.print(table)
    for name, diff in result.evaluation.auc_differences.items():
        out.print(
            f"AUC(model) - AUC({name}) = {diff['mean']:+.4f}  (paired bootstrap sd "
            f"{diff['sd']:.4f}, {diff['z']:.1f} sd)"
        )
    rows = result.rows
    out.print(
        f"rows: tune {rows['tune']:,} / calibrate {rows['calibrate']:,} / test {rows['test']:,} "
        f"x {result.n_features} features; calibration {result.calibration.get('method')}; "
        f"{result.seconds:.0f} s"
    )
    print_registered(out, result)
    out.print(f"[dim]note: {PICKLE_NOTE}[/]", highlight=False)
