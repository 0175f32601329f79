"""`--help` of every `riskcast` command: every option described, no stale text, one spelling of
"materialize", one date type, and ``--home`` on every command that reads or writes the home.

The commands are walked from the click tree of `serving.cli.build_app()`, so a new command is
checked without being listed here."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from serving.cli import build_app

STALE = (
    re.compile(r"later steps", re.IGNORECASE),
    re.compile(r"\bmaterialis", re.IGNORECASE),  # one spelling in prose: materialize
    re.compile(r"\[default: \(dynamic\)\]"),
)
# commands that never read or write RISKCAST_HOME (they take their inputs and outputs as files)
WITHOUT_HOME = {"simulate", "audit-table", "features list"}
DATE_OPTIONS = {"--as-of", "--start", "--extracted-at", "--second-delivery-at"}


def _commands() -> list[tuple[str, Any]]:
    """(name, click command) of every leaf command (typer may bring its own copy of click,
    so the tree is walked by its attributes)."""
    root = get_command(build_app())
    found: list[tuple[str, Any]] = []

    def walk(prefix: str, command: Any) -> None:
        if hasattr(command, "commands"):
            for name, sub in sorted(command.commands.items()):
                walk(f"{prefix} {name}".strip(), sub)
        else:
            found.append((prefix, command))

    walk("", root)
    return found


COMMANDS = _commands()

# Checks that fail today in files other helpers own (issue 11 splits the work); each names the
# change needed. Non-strict: once the change lands the case passes, and the entry can go.
PENDING: dict[tuple[str, str], str] = {}


def _cases(check: str) -> list[Any]:
    """(name, command) parameters of every command, pending ones marked xfail with the reason."""
    return [
        pytest.param(
            name,
            command,
            id=name,
            marks=[pytest.mark.xfail(reason=PENDING[(check, name)], strict=False)]
            if (check, name) in PENDING
            else [],
        )
        for name, command in COMMANDS
    ]


def test_every_command_is_walked() -> None:
    names = {name for name, _ in COMMANDS}
    assert {"train", "serve", "features materialize", "ledger verify", "users add"} <= names


@pytest.mark.parametrize(("name", "command"), _cases("help"))
def test_every_option_has_help(name: str, command: Any) -> None:
    missing = [
        p.opts[0]
        for p in command.params
        if p.param_type_name == "option" and not (p.help or "").strip()
    ]
    assert not missing, f"riskcast {name}: options without help: {missing}"
    assert (command.help or "").strip(), f"riskcast {name} has no description"


@pytest.mark.parametrize(("name", "command"), _cases("date"))
def test_dates_are_shown_as_date(name: str, command: Any) -> None:
    for p in command.params:
        if p.param_type_name == "option" and set(p.opts) & DATE_OPTIONS:
            assert p.metavar == "DATE", f"riskcast {name} {p.opts[0]}: metavar {p.metavar!r}"


@pytest.mark.parametrize(("name", "command"), _cases("home"))
def test_home_on_every_command_that_uses_it(name: str, command: Any) -> None:
    options = {o for p in command.params for o in p.opts}
    if name in WITHOUT_HOME:
        assert "--home" not in options, f"riskcast {name} does not use the home"
    else:
        assert "--home" in options, f"riskcast {name}: no --home"


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            name,
            id=name or "riskcast",
            marks=[pytest.mark.xfail(reason=PENDING[("text", name)], strict=False)]
            if ("text", name) in PENDING
            else [],
        )
        for name in ["", *(n for n, _ in COMMANDS)]
    ],
)
def test_help_text_is_current(name: str) -> None:
    runner = CliRunner()
    result = runner.invoke(build_app(), [*name.split(), "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    if "--home" in result.output:  # the same help everywhere, whole (no markup eaten)
        assert "default: RISKCAST_HOME, else ./var" in result.output
    for pattern in STALE:
        assert not pattern.search(result.output), (
            f"riskcast {name} --help: {pattern.pattern!r} in\n{result.output}"
        )


def test_app_is_typer() -> None:
    assert isinstance(build_app(), typer.Typer)
