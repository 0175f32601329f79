"""`riskcast access-log show | verify`: read and check the access log."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from features.chain_cli import echo_verification
from features.settings import Settings, get_settings


def _settings(home: Path | None) -> Settings:
    settings = get_settings()
    return settings if home is None else settings.model_copy(update={"home": home})


def register(app: typer.Typer) -> None:
    """Add the `access-log` group to the root CLI."""
    group = typer.Typer(
        name="access-log",
        help="The access log: append-only, hash-chained record of every person-level read.",
        no_args_is_help=True,
    )

    @group.command("show")
    def show(
        actor: str | None = typer.Option(None, "--actor", help="only this user's accesses"),
        person: str | None = typer.Option(None, "--person", help="only accesses to this person"),
        limit: int | None = typer.Option(
            None, "--limit", min=0, help="only the newest N (matching) entries"
        ),
        as_json: bool = typer.Option(False, "--json", help="print the entries as JSON"),
        home: Path | None = typer.Option(
            None, "--home", help="riskcast home (default: RISKCAST_HOME; ignored with a URL)"
        ),
    ) -> None:
        """List access-log entries, oldest first: who read which persons, why, and the outcome."""
        from serving.access_log import open_access_log

        log = open_access_log(_settings(home))
        try:
            entries = log.entries(actor=actor, person=person, limit=limit)
        finally:
            log.dispose()
        if as_json:
            typer.echo(
                json.dumps(
                    [e.model_dump(mode="json") for e in entries], indent=2, ensure_ascii=False
                )
            )
            return
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
        Console().print(table)

    @group.command("verify")
    def verify(
        head: str | None = typer.Option(
            None, "--head", help="a head hash recorded earlier: fail unless it is still there"
        ),
        home: Path | None = typer.Option(
            None, "--home", help="riskcast home (default: RISKCAST_HOME; ignored with a URL)"
        ),
    ) -> None:
        """Recompute the hash chain; exit 1 naming each edited, deleted or reordered entry."""
        from serving.access_log import open_access_log

        log = open_access_log(_settings(home))
        try:
            result = log.verify(head=head)
        finally:
            log.dispose()
        echo_verification("access log", result)

    app.add_typer(group)
