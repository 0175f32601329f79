"""`riskcast ledger show | verify`: read and check the promotion ledger.

The group and ``verify`` come from `riskcast.chain.cli.chain_group` (shared with the access
log); ``show``'s filters and table are the ledger's own, and so is what ``verify`` checks
beyond the chain: every fairness report an entry names (its kept JSON) must still exist with
the sha256 the entry recorded (`fairness.report_store.report_problems`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from riskcast.chain.cli import AS_JSON, HOME, chain_group, echo_entries, reading
from riskcast.settings import Settings

if TYPE_CHECKING:
    from fairness.ledger import Ledger, LedgerEntry


def _open(settings: Settings) -> Ledger:
    from fairness.ledger import open_ledger

    return open_ledger(settings)


def _reports(ledger: Ledger, settings: Settings) -> list[str]:
    """The ledger's entries whose kept report is missing or changed (one line each)."""
    from fairness.report_store import report_problems

    return report_problems(ledger.entries(), settings.home)


def _table(entries: Sequence[LedgerEntry]) -> Table:
    table = Table(title=f"ledger: {len(entries)} entries", show_lines=True)
    for column in ("seq", "at (UTC)", "kind"):
        table.add_column(column, no_wrap=True)
    for column in ("version", "decision", "by", "reasons"):
        table.add_column(column, overflow="fold")
    table.add_column("report sha256 (JSON) / entry hash", overflow="fold")
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
    return table


def show(
    version: str | None = typer.Option(None, "--version", help="only this model version"),
    kind: str | None = typer.Option(
        None, "--kind", help="only audit, promotion, refusal, override or rollback entries"
    ),
    as_json: bool = AS_JSON,
    home: Path | None = HOME,
) -> None:
    """List ledger entries, oldest first: who decided what about which version and why."""
    entries = reading(_open, home, lambda log: log.entries(version=version, kind=kind))
    echo_entries(entries, as_json, _table)


def register(app: typer.Typer) -> None:
    """Add the `ledger` group to the root CLI."""
    app.add_typer(
        chain_group(
            name="ledger",
            label="ledger",
            help="The promotion ledger: append-only, hash-chained record of audits and decisions.",
            opener=_open,
            show=show,
            also=_reports,
        )
    )
