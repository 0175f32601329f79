"""Pure per-week measures of a places forecast: the flagged cells, PAI@k and Poisson deviance.

A *predictions frame* is the training stage's test-prediction artifact
(``places/test_predictions.parquet``, docs/PLACES.md): one row per (cell, out-of-time week) with
``cell_id``, ``region``, ``district``, ``week_start``, ``area_km2``, ``observed`` and a score
column (``expected_count`` for the model, ``baseline_*`` for the baselines).

**Flagged cells.** Per week, cells are ranked by the score (highest first; ties by ``cell_id``,
so the ranking is reproducible) and flagged while the cumulative area stays within ``k`` of the
week's total area; at least the top cell is flagged. Whole cells are flagged, never parts of
one, because a patrol plan names cells.

**PAI@k** of a week = (share of the week's observed incidents in the flagged cells) / (share of
the week's area flagged). The denominator is the flagged share actually reached, which is ``k``
up to the last cell that did not fit: with cells of near-equal area (H3) the two differ by less
than one cell's area. A week without incidents has no PAI (null), never 0.

**Poisson deviance** of a week is the mean unit deviance over its cells,
``2·(y·log(y/μ) − (y − μ))`` (``y·log(y/μ)`` = 0 when ``y`` = 0), with ``μ`` floored at 1e-9
so a zero forecast of an observed incident is a large, finite penalty.
"""

from __future__ import annotations

import polars as pl

from fairness.validation import require_columns

PREDICTION_COLUMNS = ("cell_id", "region", "district", "week_start", "area_km2", "observed")
SCORE = "expected_count"
MISSING_DISTRICT = "(missing)"
MU_FLOOR = 1e-9


def check_predictions(frame: pl.DataFrame, score: str = SCORE) -> pl.DataFrame:
    """The frame with the contract's columns typed (district nulls named) and sorted by week and
    cell (sums then run in one order: the same predictions give the same figures to the last
    digit); `InputError` naming the missing columns otherwise."""
    require_columns(
        frame, [*PREDICTION_COLUMNS, score], what="the places test predictions lack column(s)"
    )
    return frame.with_columns(
        pl.col("cell_id").cast(pl.String),
        pl.col("region").cast(pl.String),
        pl.col("district").cast(pl.String).fill_null(MISSING_DISTRICT),
        pl.col("week_start").cast(pl.Date),
        pl.col("area_km2").cast(pl.Float64),
        pl.col("observed").cast(pl.Float64),
        pl.col(score).cast(pl.Float64),
    ).sort(["week_start", "cell_id"])


def flag_top_area(frame: pl.DataFrame, k: float, score: str = SCORE) -> pl.DataFrame:
    """``frame`` with a boolean ``flagged`` column: per week, the top cells by ``score`` whose
    cumulative area stays within ``k`` (a share, 0.05 = 5 %) of the week's area."""
    ranked = frame.sort(
        ["week_start", score, "cell_id"], descending=[False, True, False], nulls_last=True
    )
    cum = pl.col("area_km2").cum_sum().over("week_start")
    total = pl.col("area_km2").sum().over("week_start")
    first = pl.int_range(pl.len()).over("week_start") == 0
    return ranked.with_columns(((cum <= k * total) | first).alias("flagged"))


def weekly_pai(frame: pl.DataFrame, k: float, score: str = SCORE) -> pl.DataFrame:
    """One row per week: ``week_start``, ``pai`` (null without incidents), ``hit_share``,
    ``area_share`` (the flagged share reached), ``observed`` (the week's incidents)."""
    flagged = flag_top_area(frame, k, score)
    weekly = (
        flagged.sort(["week_start", "cell_id"])
        .group_by("week_start", maintain_order=True)
        .agg(
            pl.col("observed").filter(pl.col("flagged")).sum().alias("hits"),
            pl.col("observed").sum().alias("observed"),
            pl.col("area_km2").filter(pl.col("flagged")).sum().alias("flagged_area"),
            pl.col("area_km2").sum().alias("area"),
        )
    )
    hit_share = pl.when(pl.col("observed") > 0).then(pl.col("hits") / pl.col("observed"))
    area_share = pl.col("flagged_area") / pl.col("area")
    return (
        weekly.with_columns(hit_share.alias("hit_share"), area_share.alias("area_share"))
        .with_columns((pl.col("hit_share") / pl.col("area_share")).alias("pai"))
        .select("week_start", "pai", "hit_share", "area_share", "observed")
        .sort("week_start")
    )


def unit_deviance(observed: pl.Expr, expected: pl.Expr) -> pl.Expr:
    """The Poisson unit deviance of each row (see the module docstring)."""
    mu = expected.clip(lower_bound=MU_FLOOR)
    y_log = pl.when(observed > 0).then(observed * (observed / mu).log()).otherwise(0.0)
    return 2.0 * (y_log - (observed - mu))


def weekly_deviance(frame: pl.DataFrame, score: str = SCORE) -> pl.DataFrame:
    """One row per week: ``week_start``, ``deviance`` (the mean unit deviance over its cells)."""
    return (
        frame.with_columns(unit_deviance(pl.col("observed"), pl.col(score)).alias("_dev"))
        .sort(["week_start", "cell_id"])
        .group_by("week_start", maintain_order=True)
        .agg(pl.col("_dev").mean().alias("deviance"))
        .sort("week_start")
    )


def weekly_measures(frame: pl.DataFrame, k: float, score: str = SCORE) -> pl.DataFrame:
    """PAI@k and deviance per week, one row per week (``week_start``, ``pai``, ``deviance``,
    ``observed``)."""
    return weekly_pai(frame, k, score).join(weekly_deviance(frame, score), on="week_start")


def score_columns(frame: pl.DataFrame) -> list[str]:
    """The model's score and every baseline's present in a predictions frame."""
    return [c for c in frame.columns if c == SCORE or c.startswith("baseline_")]
