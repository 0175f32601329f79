"""`forecast_cells`: the expected incidents per cell for the weeks after ``T``, from a
registered ``street-crime`` version (the library function the service and `riskcast places
forecast` call).

The cell frame is built as of ``T`` only (the builder reads each source as it was known at the
end of ``T``), so a store holding later deliveries gives the same forecast as the store cut at
``T``. Columns: docs/PLACES.md, "The forecast".
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from features.cells.geo import cell_geometry
from riskcast.errors import InputError
from riskcast.names import CHAMPION
from training.places.config import load_places_training_config
from training.places.frames import build_frame, load_cell_inputs
from training.places.model import PlacesModel
from training.places.registry import load_places_model

FORECAST_COLUMNS = (
    "cell_id",
    "h3_resolution",
    "region",
    "district",
    "lat",
    "lon",
    "area_km2",
    "as_of",
    "horizon",
    "week_start",
    "expected_count",
    "lower_80",
    "upper_80",
    "reasons",
    "model_name",
    "model_version",
)


def check_weeks(weeks: int, horizons: int, option: str = "--weeks") -> None:
    """A week count the model cannot forecast is an `InputError` naming the option."""
    if weeks < 1 or weeks > horizons:
        raise InputError(
            f"{option} {weeks}: the model forecasts weeks 1 to {horizons} after the as-of date "
            f"(the configured horizon); ask for 1 to {horizons}"
        )


def score_cells(
    model: PlacesModel, frame: pl.DataFrame, *, name: str, version: str, top: int = 3
) -> pl.DataFrame:
    """The forecast rows for a built cell frame (pure: model + frame in, forecast out)."""
    mu = model.predict(frame)
    lower, upper = model.intervals(mu)
    geometry = cell_geometry(frame["cell_id"].unique().to_list())
    return (
        frame.with_columns(
            pl.Series("expected_count", mu),
            pl.Series("lower_80", lower),
            pl.Series("upper_80", upper),
            pl.Series("reasons", model.reasons(frame, top), dtype=pl.Utf8),
            pl.lit(name).alias("model_name"),
            pl.lit(version).alias("model_version"),
        )
        .join(geometry, on="cell_id", how="left")
        .select(
            pl.col("cell_id").cast(pl.Utf8),
            pl.col("h3_resolution").cast(pl.Int32),
            pl.col("region").cast(pl.Utf8),
            pl.col("district").cast(pl.Utf8),
            "lat",
            "lon",
            "area_km2",
            pl.col("as_of").cast(pl.Date),
            pl.col("horizon").cast(pl.Int32),
            pl.col("week_start").cast(pl.Date),
            "expected_count",
            "lower_80",
            "upper_80",
            "reasons",
            "model_name",
            "model_version",
        )
        .sort("horizon", "expected_count", "cell_id", descending=[False, True, False])
    )


def forecast_cells(
    home: Path,
    as_of: date,
    weeks: int,
    version: str | None = None,
    *,
    config: Path | None = None,
    places_config: Path | None = None,
    features_config: Path | None = None,
) -> pl.DataFrame:
    """One row per (cell, week 1..``weeks``) as of ``as_of`` from the registered version
    ``version`` (a number or an alias; default ``champion``)."""
    cfg, _ = load_places_training_config(config)
    check_weeks(weeks, cfg.horizons)
    loaded = load_places_model(cfg.model_name, version or CHAMPION, home=home)
    model = loaded.model
    check_weeks(weeks, model.horizons)
    inputs = load_cell_inputs(home, places_config=places_config, features_config=features_config)
    resolution = int(model.metadata.get("h3_resolution", inputs.places.h3_resolution))
    if resolution != inputs.places.h3_resolution:
        inputs = type(inputs)(
            inputs.sources,
            inputs.places.model_copy(update={"h3_resolution": resolution}),
            inputs.spec,
            inputs.store,
        )
    frame = build_frame(inputs, [as_of], range(1, weeks + 1), with_label=False)
    if frame.is_empty():
        raise InputError(
            f"--as-of {as_of}: no cells to forecast (no incident was registered in the "
            f"{inputs.places.universe_lookback_years} years before it in the store at {home})"
        )
    return score_cells(model, frame, name=loaded.name, version=loaded.version, top=cfg.reasons)
