"""`riskcast places materialize`: the serving stage's place command.

It forecasts every cell for the next weeks with the ``street-crime`` champion
(`training.places.forecast.forecast_cells`, imported when the command runs) and stores the
forecast in the hotspot store (`serving.places.store`) of the service's database, atomically:
the service keeps answering from the previous materialisation until this one is complete.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import polars as pl
import typer
from rich.console import Console

from riskcast.errors import InputError, NotFoundError
from riskcast.names import CHAMPION, PLACES_MODEL
from riskcast.settings import HOME_HELP, get_settings, use_home
from serving.places.store import HotspotMaterialization, HotspotStore

_HOME = typer.Option(None, "--home", help=HOME_HELP, callback=use_home)
AFTER_MATERIALIZE: list[Callable[[date], None]] = []
"""Called with the as-of date after each materialisation (the command root adds the places
monitoring check: `serving.monitoring_cli`)."""


def register(places: typer.Typer) -> None:
    """Adds this stage's commands to the ``places`` group (composed in `serving.cli`)."""
    places.command("materialize")(materialize)


def materialize(
    as_of: datetime | None = typer.Option(
        None,
        "--as-of",
        formats=["%Y-%m-%d"],
        metavar="DATE",
        help="forecast origin YYYY-MM-DD (end of day, UTC); default the extraction date of the "
        "store's last delivery",
    ),
    weeks: int = typer.Option(
        8, "--weeks", min=1, max=8, help="forecast weeks after the as-of date (horizons 1..8)"
    ),
    home: Path | None = _HOME,
) -> None:
    """Forecast every map cell for the next weeks with the street-crime champion and store
    the forecast for the service (`GET /v1/hotspots` and the map page answer from it)."""
    console = Console(stderr=True)
    settings = get_settings()
    day = as_of.date() if as_of is not None else last_extraction(settings.home)
    check_places_champion(settings.home)
    from training.places.forecast import forecast_cells  # the training stage, when it runs

    started = time.perf_counter()
    with console.status(f"forecasting every cell for {weeks} weeks as of {day} ..."):
        frame = forecast_cells(settings.home, day, weeks)
    done = store_forecast(frame, settings.effective_database_url)
    console.print(
        f"materialized {done.describe()} for {len(done.units)} regions "
        f"({', '.join(done.units)}) in {time.perf_counter() - started:.1f} s"
    )
    for hook in AFTER_MATERIALIZE:
        hook(day)


def last_extraction(home: Path) -> date:
    """The extraction date of the offline store's last delivery: the newest the store knows."""
    from features.store.offline import OfflineStore

    last = OfflineStore(home).state().last_delivery
    if last is None:
        raise InputError(
            f"--as-of: the offline store under {home} holds no delivery; ingest one "
            "(`riskcast ingest`) or give --as-of"
        )
    return last.extracted_at.date()


def check_places_champion(home: Path) -> str:
    """The version of the places model behind the ``champion`` alias; `NotFoundError` saying
    what to do when there is none (nothing is forecast from an unaudited model)."""
    from mlflow.exceptions import MlflowException

    from training.tracking import tracking_session, tracking_uri

    with tracking_session(tracking_uri(home)) as client:
        try:
            found = client.get_model_version_by_alias(PLACES_MODEL, CHAMPION)
        except MlflowException as exc:
            raise NotFoundError(
                f"no version of {PLACES_MODEL!r} has the alias {CHAMPION!r}: train one "
                "(`riskcast places train`), audit it and promote it through the places gate "
                "(`riskcast places audit`, `riskcast places promote`) before materializing"
            ) from exc
    return str(found.version)


def store_forecast(frame: pl.DataFrame, url: str) -> HotspotMaterialization:
    """Store a forecast in the hotspot store of the database at ``url``."""
    from serving.db import open_engine

    engine = open_engine(url)
    try:
        return HotspotStore(engine).materialize(frame)
    finally:
        engine.dispose()
