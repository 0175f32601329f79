"""The places gate on seeded synthetic test predictions: PAI@k and deviance per week, the
paired bootstrap over weeks, a better challenger passes, a worse one is refused, the first
version passes without a champion, too few common weeks is insufficient evidence."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from fairness.places.gate import decide_places, paired_ratio
from fairness.places.metrics import check_predictions, flag_top_area, weekly_measures, weekly_pai
from fairness.places.synthetic import Scenario, predictions
from fairness.policy import PlacesPolicy, load_policy

SCENARIO = Scenario(seed=3)


@pytest.fixture(scope="module")
def policy() -> PlacesPolicy:
    places = load_policy().places
    assert places is not None
    return places


@pytest.fixture(scope="module")
def good() -> pl.DataFrame:
    return check_predictions(predictions(SCENARIO, noise=0.2, seed=1))


@pytest.fixture(scope="module")
def poor() -> pl.DataFrame:
    return check_predictions(predictions(SCENARIO, noise=1.2, seed=2))


def _week(rows: list[tuple[str, float, float, int]]) -> pl.DataFrame:
    return check_predictions(
        pl.DataFrame(
            [("R", "D", date(2026, 1, 5), *r) for r in rows],
            schema=["region", "district", "week_start", "cell_id", "area_km2",
                    "expected_count", "observed"],
            orient="row",
        )
    )  # fmt: skip


def test_pai_by_hand() -> None:
    # 20 cells of 1 km²: the top 5 % of area is one cell, holding 3 of 10 incidents
    rows = [(f"c{i:02d}", 1.0, 20.0 - i, 0) for i in range(20)]
    rows[0] = ("c00", 1.0, 20.0, 3)
    rows[5] = ("c05", 1.0, 15.0, 7)
    pai = weekly_pai(_week(rows), 0.05)
    assert pai["area_share"][0] == pytest.approx(0.05)
    assert pai["hit_share"][0] == pytest.approx(0.3)
    assert pai["pai"][0] == pytest.approx(6.0)
    # at 10 %: two cells, still 3 of 10 incidents
    assert weekly_pai(_week(rows), 0.10)["pai"][0] == pytest.approx(3.0)


def test_flags_whole_cells_and_at_least_one() -> None:
    rows = [("big", 5.0, 9.0, 1), ("a", 1.0, 1.0, 0), ("b", 1.0, 0.5, 0)]
    flagged = flag_top_area(_week(rows), 0.05)
    assert flagged.filter(pl.col("flagged"))["cell_id"].to_list() == ["big"]


def test_a_week_without_incidents_has_no_pai() -> None:
    rows = [(f"c{i}", 1.0, float(i), 0) for i in range(20)]
    assert weekly_pai(_week(rows), 0.05)["pai"][0] is None


def test_deviance_is_zero_for_a_perfect_forecast_and_finite_for_a_zero_forecast() -> None:
    rows = [("a", 1.0, 2.0, 2), ("b", 1.0, 1.0, 1)]
    assert weekly_measures(_week(rows), 0.5)["deviance"][0] == pytest.approx(0.0)
    worst = weekly_measures(_week([("a", 1.0, 0.0, 2)]), 0.5)["deviance"][0]
    assert np.isfinite(worst) and worst > 50


def test_the_model_beats_its_noisier_baselines(good: pl.DataFrame) -> None:
    model = weekly_measures(good, 0.05)
    last4 = weekly_measures(good, 0.05, "baseline_last4")
    assert model["pai"].mean() > last4["pai"].mean()  # type: ignore[operator]
    assert model["deviance"].mean() < last4["deviance"].mean()  # type: ignore[operator]


def test_paired_ratio_is_seeded_and_brackets_the_value() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.gamma(5, 2, 26), rng.gamma(5, 2, 26)
    one = paired_ratio(a, b, n_boot=500, confidence=0.95, seed=7)
    assert one == paired_ratio(a, b, n_boot=500, confidence=0.95, seed=7)
    assert one != paired_ratio(a, b, n_boot=500, confidence=0.95, seed=8)
    assert one.low is not None and one.high is not None and one.value is not None
    assert one.low <= one.value <= one.high
    assert paired_ratio(a[:1], b[:1], n_boot=500, confidence=0.95, seed=7).low is None


def test_a_better_challenger_passes(
    good: pl.DataFrame, poor: pl.DataFrame, policy: PlacesPolicy
) -> None:
    comparisons, decision = decide_places(good, poor, policy, champion_version="1")
    assert decision.outcome == "pass", decision.reasons
    assert decision.champion == "1"
    pai, dev = comparisons
    assert pai.weeks == SCENARIO.weeks and pai.ratio.low is not None
    assert pai.ratio.low > 1 and dev.ratio.high is not None and dev.ratio.high < 1
    again, _ = decide_places(good, poor, policy, champion_version="1")
    assert again == comparisons  # seeded


def test_a_worse_challenger_is_refused(
    good: pl.DataFrame, poor: pl.DataFrame, policy: PlacesPolicy
) -> None:
    _, decision = decide_places(poor, good, policy, champion_version="1")
    assert decision.outcome == "fail"
    failed = [c.name for c in decision.checks if c.outcome == "fail"]
    assert failed == ["PAI@5 % vs champion", "Poisson deviance vs champion"]


def test_the_first_version_passes_without_a_champion(
    good: pl.DataFrame, policy: PlacesPolicy
) -> None:
    comparisons, decision = decide_places(good, None, policy)
    assert comparisons == [] and decision.passed
    assert "no current champion" in decision.reasons[0]


def test_too_few_common_weeks_or_no_predictions_is_insufficient_evidence(
    good: pl.DataFrame, poor: pl.DataFrame, policy: PlacesPolicy
) -> None:
    weeks = sorted(good["week_start"].unique().to_list())
    old = poor.filter(pl.col("week_start") <= weeks[3])  # 4 common weeks < min_weeks 8
    _, decision = decide_places(good, old, policy, champion_version="1")
    assert decision.outcome == "insufficient_evidence"
    _, missing = decide_places(
        good, None, policy, champion_version="1", champion_missing="no artifact"
    )
    assert missing.outcome == "insufficient_evidence" and "no artifact" in missing.reasons[0]


def test_missing_columns_are_named() -> None:
    with pytest.raises(Exception, match="area_km2"):
        check_predictions(pl.DataFrame({"cell_id": ["a"]}).with_columns(
            pl.lit("R").alias("region"), pl.lit("D").alias("district"),
            pl.lit(date(2026, 1, 5)).alias("week_start"), pl.lit(1).alias("observed"),
            pl.lit(1.0).alias("expected_count"),
        ))  # fmt: skip
