"""`riskcast ledger show | verify`: read and check the promotion ledger."""

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
    """Add the `ledger` group to the root CLI."""
    group = typer.Typer(
        name="ledger",
        help="The promotion ledger: append-only, hash-chained record of audits and decisions.",
        no_args_is_help=True,
    )

    @group.command("show")
    def show(
        version: str | None = typer.Option(None, "--version", help="only this model version"),
        kind: str | None = typer.Option(
            None, "--kind", help="only audit, promotion, refusal, override or rollback entries"
        ),
        as_json: bool = typer.Option(False, "--json", help="print the entries as JSON"),
        home: Path | None = typer.Option(
            None, "--home", help="riskcast home (default: RISKCAST_HOME; ignored with a URL)"
        ),
    ) -> None:
        """List ledger entries, oldest first: who decided what about which version and why."""
        from fairness.ledger import open_ledger

        ledger = open_ledger(_settings(home))
        try:
            entries = ledger.entries(version=version, kind=kind)
        finally:
            ledger.dispose()
        if as_json:
            typer.echo(
                json.dumps(
                    [e.model_dump(mode="json") for e in entries], indent=2, ensure_ascii=False
                )
            )
            return
        table = Table(title=f"ledger: {len(entries)} entries", show_lines=True)
        for column in ("seq", "at (UTC)", "kind"):
            table.add_column(column, no_wrap=True)
        for column in ("version", "decision", "by", "reasons"):
            table.add_column(column, overflow="fold")
        table.add_column("report / hash", overflow="fold")
        for e in entries:
            report = (e.report_sha256 or "–")[:12]
            table.add_row(
                str(e.seq),
                e.at.strftime("%Y-%m-%d %H:%M:%S"),
                e.kind,
                e.version,
                e.decision,
                f"{e.actor} ({e.role})",
                "\n".join(e.reasons) or "–",
                f"{report}\n{e.hash[:12]}",
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
        from fairness.ledger import open_ledger

        ledger = open_ledger(_settings(home))
        try:
            result = ledger.verify(head=head)
        finally:
            ledger.dispose()
        echo_verification("ledger", result)

    app.add_typer(group)
