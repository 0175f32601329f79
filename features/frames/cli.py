"""`riskcast features`: build point-in-time frames, materialize the online store, list features."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from features.frames.builder import Population, collect_features, write_features
from features.frames.definitions import FeatureSpec, load_spec
from features.store.offline import OfflineStore
from riskcast import atomic, cluster
from riskcast.settings import HOME_HELP, get_settings, use_home

_DATES = typer.Option(
    ...,
    "--as-of",
    formats=["%Y-%m-%d"],
    metavar="DATE",
    help="as-of date YYYY-MM-DD (end of day, UTC); repeat it for several dates",
)
_HOME = typer.Option(None, "--home", help=HOME_HELP, callback=use_home)
_CONFIG = typer.Option(
    None,
    "--config",
    help="feature file; default $RISKCAST_CONFIG_DIR, ./configs, then the repository's configs/",
)


AFTER_MATERIALIZE: list[Callable[[date], None]] = []
"""Called with the as-of date after each successful `materialize` (the command root attaches
the monitoring check here: features may not import the fairness stage)."""


def register(app: typer.Typer) -> None:
    """Add the `features` group to the root CLI."""
    group = typer.Typer(
        name="features",
        help="Point-in-time features: build frames, materialize the online store, list features.",
        no_args_is_help=True,
    )
    group.command("build")(build)
    group.command("materialize")(materialize)
    group.command("list")(list_features)
    app.add_typer(group, name="features")


def build(
    as_of: list[datetime] = _DATES,
    population: Population = typer.Option(
        Population.ALL,
        "--population",
        case_sensitive=False,
        help="who gets a row: all persons, those with a record, or those released recently "
        "(configs/features.yaml, populations)",
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        help="Parquet file to write (with RISKCAST_DASK_SCHEDULER: a folder of part-*.parquet, "
        "one per partition of persons)",
    ),
    config: Path | None = _CONFIG,
    home: Path | None = _HOME,
) -> None:
    """Build features for every as-of date and write them to one Parquet file.

    The frame is for looking at the data (a notebook, another tool): `riskcast train` builds
    its own snapshots from the store and does not read this file."""
    console = Console(stderr=True)
    spec = load_spec(config)
    store = OfflineStore(get_settings().home)
    dates = sorted({d.date() for d in as_of})
    started = time.perf_counter()
    with (
        cluster.session() as session,
        console.status(f"building {len(spec.features)} features as of {_dates(dates)} ..."),
    ):
        if session is not None:  # each worker writes its partitions: nothing is gathered
            summary = write_features(session, store, spec, dates, population, out)
        else:
            frame = collect_features(store, spec, dates, population).sort("as_of", "person_id")
            # atomic: a crash leaves the previous file intact
            with atomic.replacing(out) as tmp:
                frame.write_parquet(tmp, compression="zstd", statistics=True)
            summary = frame.group_by("as_of").len().sort("as_of")
    seconds = time.perf_counter() - started
    _print_summary(console, spec, summary, population, out, seconds)


def materialize(
    as_of: datetime = typer.Option(
        ...,
        "--as-of",
        formats=["%Y-%m-%d"],
        metavar="DATE",
        help="as-of date YYYY-MM-DD (end of day, UTC) of the vectors the service will score",
    ),
    config: Path | None = _CONFIG,
    home: Path | None = _HOME,
) -> None:
    """Build model-input features as of a date into the online store, with every person's
    population membership and age (`features.frames.scope`): the service scores only the
    persons inside its champion's population of validity."""
    from features.frames.materialization import materialize_online
    from features.online import open_online_store  # SQLAlchemy only when needed

    console = Console(stderr=True)
    spec = load_spec(config)
    settings = get_settings()
    day = as_of.date()
    started = time.perf_counter()
    store = OfflineStore(settings.home)
    online = open_online_store(settings)
    try:
        with (
            cluster.session(settings) as session,  # built on the cluster when it is set
            console.status(
                f"building features and population membership as of {day}"
                + ("" if session is None else f" on {session.workers} Dask workers")
                + ", writing them to the online store ..."
            ),
        ):
            done, counts = materialize_online(store, spec, day, online)
            where = "" if session is None else f" (built on {session.workers} Dask workers, "
            where += "" if session is None else f"written in {counts.parts} parts)"
    finally:
        online.dispose()
    months = spec.populations.released_within_months
    console.print(
        f"materialized {done.rows:,} vectors of {len(spec.model_inputs())} model inputs as of "
        f"{done.as_of} (spec {done.spec_hash}) to {online.where}{where} "
        f"in {time.perf_counter() - started:.1f} s (protected features are not stored online)"
    )
    console.print(
        f"populations as of {day}: with_record {counts.with_record:,}, "
        f"released within {months} months {counts.released:,}, "
        f"all {counts.rows:,} (age unknown: {counts.age_unknown:,}); the service "
        "scores only its champion's population and answers everyone else `outside_population`"
    )
    for hook in AFTER_MATERIALIZE:
        hook(day)


def list_features(config: Path | None = _CONFIG) -> None:
    """Show every feature with its metadata (protected ones are audit-only)."""
    spec = load_spec(config)
    table = Table(title=f"{len(spec.features)} features ({len(spec.model_inputs())} model inputs)")
    for column in ("name", "source", "aggregation", "window", "domain", "kind", "dir", "prot."):
        table.add_column(column, no_wrap=True)
    table.add_column("description", overflow="fold")
    for f in spec.features:
        window = "all" if f.window_days is None else f"{f.window_days}d"
        if f.window_offset_days:
            window += f" -{f.window_offset_days}d"
        agg = f.op.value if f.is_derived and f.op else str(f.aggregation or "")
        table.add_row(
            f.name,
            f.source,
            agg,
            window,
            f.domain.value,
            f.kind.value,
            f"{f.direction:+d}" if f.direction else "0",
            "yes" if f.protected else "",
            f.description,
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=220)  # piped output: do not fold the table to 80 columns
    console.print(table)


def _dates(dates: list[date]) -> str:
    return ", ".join(d.isoformat() for d in dates)


def _print_summary(
    console: Console,
    spec: FeatureSpec,
    summary: pl.DataFrame,
    population: Population,
    out: Path,
    seconds: float,
) -> None:
    if summary.height == 0:
        console.print(f"[yellow]warning:[/] population {population} is empty: {out} has no rows")
    table = Table(title=f"features {population} -> {out}")
    table.add_column("as_of")
    table.add_column("rows", justify="right")
    for row in summary.iter_rows():
        table.add_row(str(row[0]), f"{row[1]:,}")
    console.print(table)
    console.print(
        f"{len(spec.features)} features ({len(spec.model_inputs())} model inputs), "
        f"spec {spec.spec_hash()}, {seconds:.1f} s"
    )
