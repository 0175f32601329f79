"""Commands of this part of the features stage."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this part's commands to the root CLI."""
