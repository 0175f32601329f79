"""`riskcast access-log show | verify`: read and check the access log.

The group and ``verify`` come from `riskcast.chain.cli.chain_group` (shared with the ledger);
only ``show``'s filters and table are the access log's own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from riskcast.chain.cli import AS_JSON, HOME, chain_group, echo_entries, reading
from riskcast.settings import Settings

if TYPE_CHECKING:
    from serving.access_log import AccessLog, AccessLogEntry


def _open(settings: Settings) -> AccessLog:
    from serving.access_log import open_access_log

    return open_access_log(settings)


def _table(entries: Sequence[AccessLogEntry]) -> Table:
    table = Table(title=f"access log: {len(entries)} entries", show_lines=True)
    for column in ("seq", "at (UTC)"):
        table.add_column(column, no_wrap=True)
    for column in ("by", "purpose / action", "persons / params", "status / model"):
        table.add_column(column, overflow="fold")
    for e in entries:
        more = f" … (+{len(e.persons) - 5})" if len(e.persons) > 5 else ""
        shown = ", ".join(e.persons[:5]) + more
        params = json.dumps(e.params, sort_keys=True, ensure_ascii=False) if e.params else ""
        table.add_row(
            str(e.seq),
            e.at.strftime("%Y-%m-%d %H:%M:%S"),
            f"{e.actor} ({e.role})",
            f"{e.purpose or '–'}\n{e.action}",
            "\n".join(part for part in (shown, params) if part) or "–",
            f"{e.status}\n{e.model_version or '–'}",
        )
    return table


def show(
    actor: str | None = typer.Option(None, "--actor", help="only this user's accesses"),
    person: str | None = typer.Option(None, "--person", help="only accesses to this person"),
    limit: int | None = typer.Option(
        None, "--limit", min=0, help="only the newest N (matching) entries"
    ),
    as_json: bool = AS_JSON,
    home: Path | None = HOME,
) -> None:
    """List access-log entries, oldest first: who read which persons, why, and the outcome."""
    entries = reading(_open, home, lambda log: log.entries(actor=actor, person=person, limit=limit))
    echo_entries(entries, as_json, _table)


def register(app: typer.Typer) -> None:
    """Add the `access-log` group to the root CLI."""
    app.add_typer(
        chain_group(
            name="access-log",
            label="access log",
            help="The access log: append-only, hash-chained record of every person-level read.",
            opener=_open,
            show=show,
        )
    )
