"""Terminal output shared by the commands that verify a hash chain (ledger, access log)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import typer
from rich.console import Console


class Verification(Protocol):
    @property
    def ok(self) -> bool: ...
    @property
    def entries(self) -> int: ...
    @property
    def head(self) -> str | None: ...
    @property
    def problems(self) -> Sequence[str]: ...


def echo_verification(label: str, result: Verification) -> None:
    """One line when intact; otherwise every problem on stderr and exit code 1."""
    if result.ok:
        typer.echo(f"{label} intact: {result.entries} entries, head {result.head or 'none'}")
        return
    err = Console(stderr=True)
    err.print(
        f"[bold red]{label} NOT intact[/]: {len(result.problems)} problem(s) "
        f"in {result.entries} entries",
        highlight=False,
    )
    for problem in result.problems:
        err.print(f"  {problem}", highlight=False, markup=False)
    raise typer.Exit(code=1)
