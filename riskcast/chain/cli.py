"""The command group of a hash chain (`riskcast ledger ...`, `riskcast access-log ...`), made once.

`chain_group` makes the group: the caller's ``show`` (whose filters and table are its own,
built from the pieces here: `HOME`, `AS_JSON`, `reading`, `echo_entries`) and the shared
``verify``, so both chains' commands read the home, open and close the log, print JSON and
report a verification the same way. A chain whose entries point at files outside it (the
ledger's kept fairness reports) adds their problems to ``verify`` through ``also``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from riskcast.settings import HOME_HELP, Settings, get_settings

T = TypeVar("T")


class Verification(Protocol):
    @property
    def ok(self) -> bool: ...
    @property
    def entries(self) -> int: ...
    @property
    def head(self) -> str | None: ...
    @property
    def problems(self) -> Sequence[str]: ...
    @property
    def anchored(self) -> int | None: ...
    @property
    def anchors(self) -> str | None: ...


class ChainLog(Protocol):
    """What the commands need of a chain-backed log (`fairness.ledger.Ledger`,
    `serving.access_log.AccessLog`)."""

    def verify(self, *, head: str | None = None) -> Verification: ...
    def dispose(self) -> None: ...


L = TypeVar("L", bound=ChainLog)

Also = Callable[[Any, Settings], Sequence[str]]
"""More problems of an opened log beyond its chain (e.g. the files its entries name must
still hold the hashes recorded), given the settings it was opened with."""


@dataclass(frozen=True)
class Combined:
    """A chain's verification with the problems `Also` found added (a `Verification`)."""

    ok: bool
    entries: int
    head: str | None
    anchored: int | None
    anchors: str | None
    problems: Sequence[str] = field(default_factory=list)


def combined(result: Verification, more: Sequence[str]) -> Verification:
    """``result`` with ``more`` problems (itself when there are none)."""
    if not more:
        return result
    return Combined(
        ok=False,
        entries=result.entries,
        head=result.head,
        anchored=result.anchored,
        anchors=result.anchors,
        problems=[*result.problems, *more],
    )


HOME: Any = typer.Option(None, "--home", help=HOME_HELP)
AS_JSON: Any = typer.Option(False, "--json", help="print the entries as JSON")
HEAD: Any = typer.Option(
    None,
    "--head",
    help="a head hash recorded elsewhere: fail unless it is still there (deleting the "
    "newest entries is found without it, by the anchors)",
)


def settings_for(home: Path | None) -> Settings:
    """The kernel settings, with ``--home`` in place of ``RISKCAST_HOME`` when given."""
    settings = get_settings()
    return settings if home is None else settings.model_copy(update={"home": home})


def reading(opener: Callable[[Settings], L], home: Path | None, read: Callable[[L], T]) -> T:
    """Open the log for ``home``, ``read`` it, and close it whatever happens."""
    log = opener(settings_for(home))
    try:
        return read(log)
    finally:
        log.dispose()


def echo_entries(
    entries: Sequence[BaseModel], as_json: bool, table: Callable[[Sequence[Any]], Table]
) -> None:
    """The entries as a JSON list (``--json``), else as the caller's rich table."""
    if as_json:
        dumped = [e.model_dump(mode="json") for e in entries]
        typer.echo(json.dumps(dumped, indent=2, ensure_ascii=False))
        return
    Console().print(table(entries))


def chain_group(
    *,
    name: str,
    label: str,
    help: str,
    opener: Callable[[Settings], ChainLog],
    show: Callable[..., None],
    also: Also | None = None,
) -> typer.Typer:
    """The ``name`` group: ``show`` (the caller's command, typer options in its signature) and
    ``verify``. ``label`` names the chain in the output; ``opener`` opens the log from the
    kernel settings (import the stage inside it, so the CLI starts without loading it);
    ``also`` adds problems beyond the chain to ``verify``."""
    group = typer.Typer(name=name, help=help, no_args_is_help=True)
    group.command("show")(show)

    @group.command("verify")
    def verify(head: str | None = HEAD, home: Path | None = HOME) -> None:
        """Recompute the keyed hash chain and compare it with its anchors; exit 1 naming each
        edited, deleted (the newest too) or reordered entry. Needs RISKCAST_CHAIN_KEY and the
        anchors (RISKCAST_HOME/anchors, or RISKCAST_CHAIN_ANCHOR_DIR) the writers use."""
        settings = settings_for(home)

        def check(log: ChainLog) -> Verification:
            result = log.verify(head=head)
            return combined(result, also(log, settings) if also is not None else [])

        echo_verification(label, reading(opener, home, check))

    return group


def echo_verification(label: str, result: Verification) -> None:
    """One line when intact (with the newest anchor it was compared with); otherwise every
    problem on stderr and exit code 1."""
    if result.ok:
        anchored = (
            f", anchored through seq {result.anchored} in {result.anchors}"
            if result.anchored is not None
            else ""
        )
        typer.echo(
            f"{label} intact: {result.entries} entries, head {result.head or 'none'}{anchored}"
        )
        return
    err = Console(stderr=True)
    err.print(
        f"[bold red]{label} NOT intact[/]: {len(result.problems)} problem(s) "
        f"in {result.entries} entries",
        highlight=False,
    )
    for problem in result.problems:
        err.print(f"  {problem}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(code=1)
