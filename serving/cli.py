"""The `riskcast` command: composes one sub-command group per stage, each owned by its stage.

It also hands the stages what only the service has: the users table (`open_users`) proves who
makes an override in `riskcast promote --override` (`riskcast.auth.Authenticator`), since the
fairness stage may not import the service."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from fairness import cli as fairness_cli
from fairness import ledger_cli
from fairness.places import cli as fairness_places_cli
from features import cli as features_cli
from riskcast.errors import RiskcastError
from serving import access_log_cli, monitoring_cli
from serving import commands as serving_commands
from serving.places import cli as serving_places_cli
from serving.users import open_users
from training import cli as training_cli
from training import tabular_cli
from training.places import cli as training_places_cli


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="riskcast",
        help=(
            "Risk forecasting from national register extracts: simulate registers, ingest "
            "deliveries, build point-in-time features, train, audit, promote and serve."
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
    fairness_cli.register(app, authenticator=open_users)  # overrides: an auditor's token
    ledger_cli.register(app)
    serving_commands.register(app)
    access_log_cli.register(app)
    monitoring_cli.register(app)  # riskcast monitor, and a check after each materialisation
    app.add_typer(_places_group(), name="places")
    return app


def _places_group() -> typer.Typer:
    """`riskcast places ...`: the map-cell forecast, one command group fed by every stage."""
    places = typer.Typer(
        help=(
            "Places: weekly street-crime forecasts per H3 map cell (train, forecast, evaluate, "
            "audit, promote, materialize)."
        ),
        no_args_is_help=True,
    )
    training_places_cli.register(places)
    fairness_places_cli.register(places)
    serving_places_cli.register(places)
    return places


def main() -> None:
    """Entry point: errors riskcast raises on purpose become one clear line and an exit code."""
    app = build_app()
    try:
        app()  # standalone: usage errors print their message and exit 2
    except RiskcastError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
