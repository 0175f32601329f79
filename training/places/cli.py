"""`riskcast places train|forecast|evaluate`: the training stage's place commands.

Heavy imports (LightGBM, MLflow, the cell builder) happen when a command runs, so ``--help`` is
fast. Errors are `riskcast.errors` exceptions with one clear line (the root CLI prints them).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from riskcast.errors import InputError
from riskcast.settings import HOME_HELP, get_settings, use_home
from training.progress import print_registered, progress_bar

_HOME = typer.Option(None, "--home", help=HOME_HELP, callback=use_home)
_CONFIG = typer.Option(
    None,
    "--config",
    help="places training file; default places_training.yaml in $RISKCAST_CONFIG_DIR, "
    "./configs, then the repository's configs/",
)
_PLACES = typer.Option(
    None, "--places-config", help="cell grid file; default places.yaml, as --config"
)
_FEATURES = typer.Option(
    None, "--features-config", help="cell feature file; default cell_features.yaml, as --config"
)


def register(places: typer.Typer) -> None:
    """Adds this stage's commands to the ``places`` group (composed in `serving.cli`)."""
    places.command("train")(train_command)
    places.command("forecast")(forecast_command)
    places.command("evaluate")(evaluate_command)


def _fmt(value: object, digits: int = 2) -> str:
    if value is None:
        return "-"
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    return "-" if v != v else f"{v:.{digits}f}"


def train_command(
    config: Path | None = _CONFIG,
    places_config: Path | None = _PLACES,
    features_config: Path | None = _FEATURES,
    trials: int | None = typer.Option(
        None, "--trials", min=1, help="Optuna trials; default: the config's"
    ),
    truth: Path | None = typer.Option(
        None,
        "--truth",
        help="truth manifest or folder with the true intensity per cell (simulated deliveries); "
        "default: the config's truth_dir (none: no truth ranking)",
    ),
    home: Path | None = _HOME,
) -> None:
    """Train the street-crime model on the store: Optuna on rolling-origin folds, baselines
    (last 4 weeks, KDE, Hawkes-style), out-of-time PAI/PEI/deviance; log the run to MLflow and
    register it as the `challenger` version."""
    from training.places.train import train_places

    with progress_bar() as progress:
        result = train_places(
            home=get_settings().home,
            config=config,
            places_config=places_config,
            features_config=features_config,
            trials=trials,
            truth_dir=truth,
            progress=progress,
        )
    out = Console(soft_wrap=True)
    plan = result.plan
    table = Table(
        title=f"out-of-time test: {len(plan.test)} weeks from {plan.test[0]} to {plan.test[-1]} "
        f"(horizon 1, {result.rows['test']:,} cell-weeks)"
    )
    for column in ("scorer", "PAI@1%", "PAI@5%", "PAI@10%", "PEI@5%", "deviance"):
        table.add_column(column, justify="left" if column == "scorer" else "right")
    for row in result.evaluation.headline():
        table.add_row(
            row["scorer"],
            _fmt(row["PAI@1%"]),
            _fmt(row["PAI@5%"]),
            _fmt(row["PAI@10%"]),
            _fmt(row["PEI@5%"], 3),
            _fmt(row["deviance"], 5),
        )
    out.print(table)
    for name, d in result.evaluation.differences.items():
        if "mean" in d:
            out.print(
                f"{name}: {d['mean']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] "
                f"(paired bootstrap over {int(d['weeks'])} weeks, 95 %)"
            )
        else:
            out.print(f"{name}: {d['share']:.2f}")
    cov = result.evaluation.coverage
    out.print(
        f"objective {result.tuning.objective} (best deviance per objective on the folds: "
        + ", ".join(f"{k} {v:.5f}" for k, v in sorted(result.tuning.by_objective.items()))
        + f"); 80 % interval coverage {_fmt(cov, 3)}; truth: {result.truth_note}"
    )
    print_registered(out, result)


def forecast_command(
    as_of: datetime = typer.Option(
        ...,
        "--as-of",
        formats=["%Y-%m-%d"],
        metavar="DATE",
        help="forecast origin YYYY-MM-DD (end of day, UTC)",
    ),
    weeks: int = typer.Option(
        8, "--weeks", help="weeks after the as-of date (1 to the model's horizon)"
    ),
    out: Path = typer.Option(..., "--out", help="output file: .parquet or .csv"),
    version: str | None = typer.Option(None, "--version", help="registered version number"),
    alias: str | None = typer.Option(None, "--alias", help="registered alias; default champion"),
    config: Path | None = _CONFIG,
    places_config: Path | None = _PLACES,
    features_config: Path | None = _FEATURES,
    home: Path | None = _HOME,
) -> None:
    """Forecast every map cell for the weeks after --as-of (only what was known then) and
    write one row per cell and week."""
    if version is not None and alias is not None:
        raise InputError("--version and --alias: give one of them, not both")
    if version is not None and not version.isdigit():
        raise InputError(f"--version {version!r}: a version number (use --alias for names)")
    suffix = out.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise InputError(f"--out {out}: the file must end in .parquet or .csv")
    import time

    from training.places.forecast import forecast_cells

    console = Console(stderr=True)
    started = time.perf_counter()
    with console.status(f"forecasting every cell for {weeks} weeks as of {as_of.date()} ..."):
        frame = forecast_cells(
            get_settings().home,
            as_of.date(),
            weeks,
            version or alias,
            config=config,
            places_config=places_config,
            features_config=features_config,
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        frame.write_csv(out)
    else:
        frame.write_parquet(out)
    name, ver = frame["model_name"][0], frame["model_version"][0]
    Console(soft_wrap=True).print(
        f"wrote {frame.height:,} rows ({frame['cell_id'].n_unique():,} cells x {weeks} weeks) "
        f"from {name} v{ver} to {out} in {time.perf_counter() - started:.1f} s"
    )


def evaluate_command(
    version: str | None = typer.Option(None, "--version", help="registered version number"),
    alias: str | None = typer.Option(None, "--alias", help="registered alias; default challenger"),
    config: Path | None = _CONFIG,
    home: Path | None = _HOME,
) -> None:
    """Print the out-of-time metrics (model vs baselines, per region) a registered version
    was evaluated with, from its MLflow run."""
    if version is not None and alias is not None:
        raise InputError("--version and --alias: give one of them, not both")
    from training.places.evaluation_report import version_metrics

    report = version_metrics(get_settings().home, version or alias or "challenger", config=config)
    Console(soft_wrap=True).print(report)
