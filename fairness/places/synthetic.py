"""Seeded synthetic test predictions for the places audit (tests and dry runs, fairlearn-style).

`scenario` draws a map of districts and cells with a known weekly intensity (stable hotspots
times a seasonal wave), the observed counts as Poisson draws of it, and forecasts of chosen
quality: ``noise`` is the spread (log scale) of the forecast around the true intensity, so a
smaller noise is a better model. ``inflate`` multiplies one district's forecasts (a map that
sends attention there beyond its incidents). The frame has the columns of the training stage's
``places/test_predictions.parquet`` (docs/PLACES.md), so the audit reads both the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl


@dataclass(frozen=True)
class Scenario:
    """The map: ``districts`` per region, ``cells`` per district, ``weeks`` from ``start``."""

    regions: tuple[str, ...] = ("R1", "R2")
    districts: int = 4
    cells: int = 60
    weeks: int = 26
    start: date = date(2026, 1, 5)  # a Monday
    seed: int = 0
    hotspot_share: float = 0.08
    base_rate: float = 0.08
    hotspot_rate: float = 2.5


def truth(s: Scenario) -> pl.DataFrame:
    """The cells and their true weekly intensity and observed counts (one row per cell-week)."""
    rng = np.random.default_rng(s.seed)
    rows = []
    for region in s.regions:
        for d in range(s.districts):
            district = f"{region}-D{d + 1}"
            for c in range(s.cells):
                hot = rng.random() < s.hotspot_share
                rate = (s.hotspot_rate if hot else s.base_rate) * rng.lognormal(0, 0.5)
                area = 0.7 + 0.1 * rng.random()
                rows.append((f"{district}-c{c:03d}", region, district, rate, area))
    cells = pl.DataFrame(
        rows, schema=["cell_id", "region", "district", "rate", "area_km2"], orient="row"
    )
    weeks = pl.DataFrame(
        {
            "week_start": [s.start + timedelta(weeks=w) for w in range(s.weeks)],
            "season": [1 + 0.3 * np.sin(2 * np.pi * w / 52) for w in range(s.weeks)],
        }
    )
    frame = cells.join(weeks, how="cross").with_columns(
        (pl.col("rate") * pl.col("season")).alias("intensity")
    )
    observed = rng.poisson(frame["intensity"].to_numpy())
    return frame.with_columns(pl.Series("observed", observed, dtype=pl.Int64)).drop(
        "rate", "season"
    )


def forecast(
    frame: pl.DataFrame, *, noise: float, seed: int, inflate: Mapping[str, float] | None = None
) -> pl.Series:
    """A forecast of ``frame``'s intensity with log-normal ``noise``; ``inflate`` multiplies
    the forecasts of the named districts."""
    rng = np.random.default_rng(seed)
    values = frame["intensity"].to_numpy() * rng.lognormal(-(noise**2) / 2, noise, frame.height)
    factor = frame["district"].replace_strict(
        dict(inflate or {}), default=1.0, return_dtype=pl.Float64
    )
    return pl.Series("expected_count", values * factor.to_numpy())


def predictions(
    s: Scenario, *, noise: float = 0.2, seed: int = 1, inflate: Mapping[str, float] | None = None
) -> pl.DataFrame:
    """Test predictions in the artifact's columns: the model (``noise``) and three baselines
    (last 4 weeks: very noisy; KDE: smoothed per district; Hawkes: moderately noisy)."""
    frame = truth(s)
    model = forecast(frame, noise=noise, seed=seed, inflate=inflate)
    last4 = forecast(frame, noise=1.0, seed=seed + 1)
    hawkes = forecast(frame, noise=0.7, seed=seed + 2)
    kde = (
        frame.with_columns(forecast(frame, noise=0.5, seed=seed + 3).alias("_k"))
        .with_columns(
            (0.5 * pl.col("_k") + 0.5 * pl.col("_k").mean().over("district", "week_start"))
            .alias("baseline_kde")
        )["baseline_kde"]
    )  # fmt: skip
    return frame.select(
        "cell_id", "region", "district", "week_start", "area_km2",
        pl.col("observed").cast(pl.Int64),
    ).with_columns(
        model.alias("expected_count"), last4.alias("baseline_last4"),
        kde.alias("baseline_kde"), hawkes.alias("baseline_hawkes"),
    )  # fmt: skip
