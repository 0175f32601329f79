"""The features stage's commands: simulate, ingest, status and the `features` group."""

from __future__ import annotations

import typer

from features.frames import cli as frames_cli
from features.ingest import cli as ingest_cli
from riskcast.errors import ConfigError

SIMULATOR_MISSING = (
    "the register simulator is a development tool and is not installed here (the runtime image "
    "leaves it out); use a source checkout: pip install -e '.[dev]'"
)


def register(app: typer.Typer) -> None:
    try:  # imported only here: runtime code never depends on the simulator
        from features.simulator import cli as simulator_cli
    except ModuleNotFoundError as exc:
        if exc.name not in {"features.simulator", "features.simulator.cli"}:
            raise
        app.command(
            "simulate",
            help=SIMULATOR_MISSING,
            context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        )(_simulator_missing)
    else:
        simulator_cli.register(app)
    ingest_cli.register(app)
    frames_cli.register(app)


def _simulator_missing() -> None:
    raise ConfigError(SIMULATOR_MISSING)
