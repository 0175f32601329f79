"""The `riskcast` command: composes one sub-command group per stage, each owned by its stage."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from fairness import cli as fairness_cli
from fairness import ledger_cli
from features import cli as features_cli
from features.errors import RiskcastError
from serving import access_log_cli
from serving import commands as serving_commands
from training import cli as training_cli
from training import tabular_cli


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="riskcast",
        help=(
            "Risk forecasting from national register extracts: simulate registers, ingest "
            "deliveries, build point-in-time features (and, in later steps, train, audit, serve)."
        ),
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )

    @app.callback()
    def _root() -> None:
        """riskcast: risk forecasting from national register extracts."""

    features_cli.register(app)
    training_cli.register(app)
    tabular_cli.register(app)
    fairness_cli.register(app)
    ledger_cli.register(app)
    serving_commands.register(app)
    access_log_cli.register(app)
    return app


def main() -> None:
    """Entry point: errors riskcast raises on purpose become one clear line and an exit code."""
    app = build_app()
    try:
        app()  # standalone: usage errors print their message and exit 2
    except RiskcastError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
