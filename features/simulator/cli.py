"""`riskcast simulate`: write a synthetic register delivery and its truth."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from pathlib import Path

import polars as pl
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from features.simulator.config import SimulatorConfig, load_config
from features.simulator.run import (
    SimulationResult,
    check_arguments,
    check_output,
    extraction_time,
    second_folder,
    simulate,
)

DATE_FORMATS = ["%Y-%m-%d"]
HELP = (
    "Simulate national registers: a delivery per the extract contract, plus the truth.\n\n"
    "The truth folder OUT_truth/ holds labels.parquet (person_id, as_of, horizon_days, p_true, "
    "label and latent counts), persons.parquet (latent attributes), offences.parquet (every "
    "offence, detected or not), expected-ingest.json (what a correct ingest of OUT reports) "
    "and, with --second-delivery-at, changes.parquet (rows corrected or dropped in OUT_2/); "
    "truth-manifest.json names the delivery the truth belongs to and the SHA-256 of each file "
    "(give it, or the folder, to `riskcast train --truth`).\n\n"
    "--corrupt-rate adds invalid rows of every kind the contract's controls catch that the "
    "output format can carry (Parquet: all rules but the _type rules of date, timestamp, int "
    "and bool columns; CSV: every rule, including unparseable values), at least one of each "
    "kind per chunk, and counts them per table and rule in expected-ingest.json.\n\n"
    "Example: riskcast simulate --out var/deliveries/d1 --persons 20000 --seed 7 "
    "--start 2016-01-01 --extracted-at 2025-12-31 --as-of 2024-12-31 --corrupt-rate 0.01"
)


class DeliveryFormat(StrEnum):
    PARQUET = "parquet"
    CSV = "csv"


def _date(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


def simulate_command(
    out: Path = typer.Option(
        ..., "--out", help="Delivery folder to write. The truth goes to the sibling OUT_truth/."
    ),
    persons: int = typer.Option(..., "--persons", min=1, help="Number of persons."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed: the same seed gives the same bytes."),
    start: datetime = typer.Option(
        "2016-01-01",
        "--start",
        formats=DATE_FORMATS,
        metavar="DATE",
        help="First day simulated.",
    ),
    extracted_at: datetime = typer.Option(
        "2025-12-31",
        "--extracted-at",
        formats=DATE_FORMATS,
        metavar="DATE",
        help="Extraction date; the delivery is extracted at 23:59:59Z of that day.",
    ),
    as_of: list[datetime] = typer.Option(
        [],
        "--as-of",
        formats=DATE_FORMATS,
        metavar="DATE",
        help="As-of date for p_true and labels (repeatable; default: horizon before extraction). "
        "Its window must end by the extraction date.",
    ),
    horizon_days: int = typer.Option(365, "--horizon-days", min=1, help="Label horizon H."),
    corrupt_rate: float = typer.Option(
        0.0,
        "--corrupt-rate",
        min=0.0,
        max=0.5,
        help="Share of rows per table added as invalid rows, at least one of every kind the "
        "format can carry (ledger: OUT_truth/expected-ingest.json).",
    ),
    fmt: DeliveryFormat = typer.Option(
        DeliveryFormat.PARQUET,
        "--format",
        case_sensitive=False,
        help="File format of the delivery tables: parquet, or csv (UTF-8, header, ISO dates, "
        "timestamps ending in Z; lets --corrupt-rate inject values of the wrong type too).",
    ),
    second_delivery_at: datetime | None = typer.Option(
        None,
        "--second-delivery-at",
        formats=DATE_FORMATS,
        metavar="DATE",
        help="Also write a later full delivery extracted on this date (with corrections, drops).",
    ),
    second_out: Path | None = typer.Option(
        None, "--second-out", help="Folder of the second delivery (default: OUT_2/)."
    ),
    config: Path | None = typer.Option(
        None, "--config", exists=True, dir_okay=False, help="YAML overriding model parameters."
    ),
    chunk_size: int = typer.Option(200_000, "--chunk-size", min=1, help="Persons per chunk."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output folders."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar and no summary."),
) -> None:
    """Simulate national registers (see HELP)."""
    cfg = load_config(config) if config is not None else SimulatorConfig()
    first = extraction_time(extracted_at.date())
    second = extraction_time(second_delivery_at.date()) if second_delivery_at else None
    as_of_dates = [d.date() for d in as_of]
    check_output(out, (second_out or second_folder(out)) if second else None, overwrite)
    check_arguments(
        persons,
        seed,
        start.date(),
        first,
        second,
        as_of_dates,
        horizon_days,
        corrupt_rate,
        chunk_size,
    )
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]{task.description:<8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
        transient=False,
    ) as bar:
        chunks = (persons + chunk_size - 1) // chunk_size
        tasks = {
            "persons": bar.add_task("persons", total=chunks),
            "places": bar.add_task("places", total=None),
        }

        def report(stage: str, done: int, total: int) -> None:
            bar.update(tasks[stage], completed=done, total=total)

        result = simulate(
            out=out,
            persons=persons,
            seed=seed,
            start=start.date(),
            extracted_at=extracted_at.date(),
            as_of=as_of_dates,
            horizon_days=horizon_days,
            corrupt_rate=corrupt_rate,
            second_delivery_at=_date(second_delivery_at),
            second_out=second_out,
            config=cfg,
            chunk_size=chunk_size,
            overwrite=overwrite,
            progress=report,
            fmt="csv" if fmt is DeliveryFormat.CSV else "parquet",
        )
    if not quiet:
        _summary(Console(), result)


def _summary(console: Console, r: SimulationResult) -> None:
    table = Table(title=f"{r.extract_id}  ({r.seconds:.1f} s)")
    table.add_column("table")
    table.add_column("rows", justify="right")
    table.add_column("to quarantine", justify="right")
    table.add_column("exact dups", justify="right")
    if r.second_rows is not None:
        table.add_column(f"rows in {r.second_extract_id}", justify="right")
    ledger = r.ledger["tables"]
    assert isinstance(ledger, dict)
    for name, rows in r.rows.items():
        counts = ledger[name]
        cells = [
            name,
            f"{rows:,}",
            f"{counts['quarantined']:,}",
            f"{counts['duplicates_dropped']:,}",
        ]
        if r.second_rows is not None:
            cells.append(f"{r.second_rows[name]:,}")
        table.add_row(*cells)
    console.print(table)
    labels = pl.read_parquet(r.truth_files["labels"], columns=["as_of", "p_true", "label"])
    rates = labels.group_by("as_of").agg(
        pl.col("p_true").mean().alias("p"), pl.col("label").mean().alias("y")
    )
    for row in rates.sort("as_of").iter_rows(named=True):
        console.print(
            f"as of {row['as_of']}: mean p_true {row['p']:.4f}, observed label rate {row['y']:.4f}"
        )
    console.print(f"delivery: {r.delivery}\ntruth:    {r.truth_manifest}")
    if r.second_delivery is not None:
        console.print(f"second:   {r.second_delivery}")


def register(app: typer.Typer) -> None:
    """Add `simulate` to the root CLI."""
    app.command("simulate", help=HELP)(simulate_command)
