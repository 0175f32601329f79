"""Places metrics against values computed by hand."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from training.places.metrics import (
    calibration_table,
    flagged_capture,
    pai_at,
    paired_bootstrap,
    paired_weeks,
    poisson_deviance,
    share_label,
    summarise,
    week_scores,
)


def test_poisson_deviance_by_hand() -> None:
    # y=0, mu=1: 2*(0 - (0-1)) = 2 ; y=2, mu=1: 2*(2 ln 2 - 1) ; y=1, mu=1: 0
    got = poisson_deviance([0, 2, 1], [1.0, 1.0, 1.0])
    assert got == pytest.approx((2 + 2 * (2 * np.log(2) - 1) + 0) / 3)
    assert poisson_deviance([3, 0], [3.0, 1e-12]) == pytest.approx(2e-9 / 2, abs=1e-9)


def test_pai_ten_equal_cells() -> None:
    # 10 cells of 1 km², 20 incidents, the top cell (10 % of area) holds 8 -> hit 0.4, PAI 4
    score = np.arange(10, 0, -1, dtype=float)
    y = np.array([8, 4, 2, 2, 1, 1, 1, 1, 0, 0], dtype=float)
    area = np.ones(10)
    hit, pai = pai_at(score, y, area, 0.10)
    assert hit == pytest.approx(0.4)
    assert pai == pytest.approx(4.0)
    hit20, pai20 = pai_at(score, y, area, 0.20)
    assert (hit20, pai20) == pytest.approx((0.6, 3.0))


def test_ties_share_the_cut_in_proportion_of_area() -> None:
    # all cells tied: flagging 10 % of the area captures 10 % of incidents in expectation
    y = np.array([5, 0, 0, 0, 0, 0, 0, 0, 0, 5], dtype=float)
    captured, flagged = flagged_capture(np.zeros(10), y, np.ones(10), 0.1)
    assert (captured, flagged) == pytest.approx((1.0, 1.0))
    # one cell ahead, then 9 tied: 15 % of area = the first cell + half a cell of the tied group
    score = np.array([1.0] + [0.0] * 9)
    captured, flagged = flagged_capture(score, y, np.ones(10), 0.15)
    assert flagged == pytest.approx(1.5)
    assert captured == pytest.approx(5 + 0.5 * 5 / 9)


def test_unequal_areas() -> None:
    # cell A: 2 km², 6 incidents; cell B: 1 km², 0; cell C: 1 km², 4 -> 50 % of area = A
    hit, pai = pai_at(
        np.array([3.0, 2.0, 1.0]), np.array([6.0, 0.0, 4.0]), np.array([2.0, 1.0, 1.0]), 0.5
    )
    assert (hit, pai) == pytest.approx((0.6, 1.2))


def test_no_incidents_is_nan() -> None:
    hit, pai = pai_at(np.ones(3), np.zeros(3), np.ones(3), 0.1)
    assert np.isnan(hit) and np.isnan(pai)


def _frame() -> pl.DataFrame:
    w1, w2 = date(2025, 1, 6), date(2025, 1, 13)
    return pl.DataFrame(
        {
            "week_start": [w1] * 4 + [w2] * 4,
            "cell_id": ["a", "b", "c", "d"] * 2,
            "region": ["R1", "R1", "R2", "R2"] * 2,
            "area_km2": [1.0] * 8,
            "observed": [3, 1, 0, 0, 0, 2, 2, 0],
            "model": [2.0, 1.0, 0.5, 0.1, 0.1, 1.5, 1.0, 0.2],
            "flat": [1.0] * 8,
        }
    )


def test_week_scores_and_pei() -> None:
    weekly = week_scores(_frame(), ["model", "flat"], [0.25])
    m = weekly.filter(pl.col("score") == "model").sort("week_start")
    # week 1: top cell a holds 3 of 4 -> hit .75, PAI 3, best PAI 3 -> PEI 1
    # week 2: top cell b holds 2 of 4 -> hit .5, PAI 2, best 2 -> PEI 1
    assert m["pai"].to_list() == pytest.approx([3.0, 2.0])
    assert m["pei"].to_list() == pytest.approx([1.0, 1.0])
    f = weekly.filter(pl.col("score") == "flat")
    assert f["pai"].to_list() == pytest.approx([1.0, 1.0])  # ties: the area's share
    assert f["pei"].to_list() == pytest.approx([1 / 3, 1 / 2])


def test_summarise_means_over_weeks() -> None:
    s = summarise(_frame(), ["model", "flat"], [0.25])
    assert s["model"]["pai_25"] == pytest.approx(2.5)
    assert s["flat"]["pei_25"] == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert s["model"]["observed"] == 8.0
    assert s["model"]["weeks"] == 2.0
    assert share_label(0.05) == "5"


def test_calibration_by_region_and_decile() -> None:
    by_region = calibration_table(_frame(), "model", by="region")
    assert by_region["expected"].to_list() == pytest.approx(
        [2 + 1 + 0.1 + 1.5, 0.5 + 0.1 + 1.0 + 0.2]
    )
    assert by_region["observed"].to_list() == [6.0, 2.0]
    dec = calibration_table(_frame(), "model", deciles=True)
    assert dec["cell_weeks"].sum() == 8
    assert dec["decile"].max() == 10


def test_paired_bootstrap() -> None:
    same = paired_bootstrap([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert (same.mean, same.low, same.high) == (0.0, 0.0, 0.0)
    better = paired_bootstrap([2.0, 3.0, 4.0, 5.0], [1.0, 2.0, 3.0, 4.0 - 0.5], seed=1)
    assert better.mean == pytest.approx(1.125)
    assert better.excludes_zero
    nan = paired_bootstrap([np.nan, 1.0], [0.0, 0.5])
    assert nan.weeks == 1 and nan.mean == pytest.approx(0.5)
    weekly = week_scores(_frame(), ["model", "flat"], [0.25])
    diff = paired_weeks(weekly, "model", "flat", 0.25)
    assert diff.mean == pytest.approx(1.5) and diff.weeks == 2
