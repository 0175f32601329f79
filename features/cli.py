"""The features stage's commands: simulate, ingest, status and the `features` group."""

from __future__ import annotations

import typer

from features.frames import cli as frames_cli
from features.ingest import cli as ingest_cli
from features.simulator import cli as simulator_cli


def register(app: typer.Typer) -> None:
    simulator_cli.register(app)
    ingest_cli.register(app)
    frames_cli.register(app)
