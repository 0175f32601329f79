"""Commands of the ingest part of the features stage: `riskcast ingest` and `riskcast status`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from riskcast.errors import DeliveryRefused
from riskcast.settings import HOME_HELP, get_settings


def _home(home: Path | None) -> Path:
    return home if home is not None else get_settings().home


def _write_json(path: Path, payload: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def register(app: typer.Typer) -> None:
    """Add `ingest` and `status` to the root CLI."""

    @app.command("ingest")
    def ingest(
        delivery: Path = typer.Argument(..., help="delivery folder holding manifest.json"),
        home: Path | None = typer.Option(None, "--home", help=HOME_HELP),
        report_json: Path | None = typer.Option(
            None, "--report-json", help="also write the ingest report as JSON to this file"
        ),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="show progress"),
    ) -> None:
        """Verify a register delivery, apply the contract's controls and store it.

        A damaged or out-of-order delivery is refused whole (exit code 3) and nothing is
        written to the store; re-ingesting the same delivery does nothing and says so.
        """
        from features.ingest.pipeline import ingest_delivery, refused_extract_id
        from features.ingest.report import IngestReport, render

        console = Console()
        try:
            report = ingest_delivery(delivery, _home(home), progress=progress)
        except DeliveryRefused as exc:
            if report_json is not None:
                refused = IngestReport.refused(refused_extract_id(delivery), str(exc))
                _write_json(report_json, refused.to_json_dict())
            raise
        if report_json is not None:
            _write_json(report_json, report.to_json_dict())
        render(report, console)

    @app.command("status")
    def status(
        home: Path | None = typer.Option(None, "--home", help=HOME_HELP),
    ) -> None:
        """Show the deliveries ingested, row counts of current versions and quarantine counts."""
        from features.ingest.status import render_status, store_status

        render_status(store_status(_home(home)), Console())
