"""Registration-rate drift (`fairness.monitoring.rates`) on seeded synthetic counts: a region
whose record rate rises by half is named, and nothing else; the same distribution twice, and
a trend common to every group, raise nothing; the interval holds the overdispersion a
bootstrap over persons sees; and the check carries it into breaches and figures."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import polars as pl
import pytest

from fairness.monitoring.alerts import rate_breaches
from fairness.monitoring.check import CheckInputs, figures, run_check
from fairness.monitoring.config import (
    DriftSettings,
    EstimateSettings,
    MonitoringConfig,
    RateSettings,
)
from fairness.monitoring.rates import RateDrift, rate_drift
from fairness.policy import load_policy
from training.model import Tier

REGIONS = ["R1", "R2", "R3", "R4"]
SETTINGS = RateSettings(inputs=["cases_90d", "admin_365d"])
GROUPS = ["region", "ethnicity"]


def _persons(
    rng: np.random.Generator, n: int, rate: float = 0.12, factor: dict[str, float] | None = None
) -> pl.DataFrame:
    """Counts per person, negative binomial (dispersion about 2.2: a few persons offend
    often), with the region's rate multiplied by ``factor``."""
    region = rng.choice(REGIONS, n, p=[0.37, 0.25, 0.2, 0.18])
    ethnicity = rng.choice(["E1", "E2", "E3"], n, p=[0.6, 0.3, 0.1])
    mult = np.array([(factor or {}).get(r, 1.0) for r in REGIONS])[np.searchsorted(REGIONS, region)]
    shape = 0.1  # gamma-Poisson: variance = mean + mean² / shape
    cases = rng.poisson(rng.gamma(shape, rate * mult / shape))
    admin = rng.poisson(rng.gamma(0.5, 0.3 / 0.5, n))
    return pl.DataFrame(
        {"cases_90d": cases, "admin_365d": admin, "region": region, "ethnicity": ethnicity}
    )


def _alerts(results: list[RateDrift]) -> set[tuple[str, str, str]]:
    return {(r.input, r.group_column, r.group) for r in results if r.status == "alert"}


def test_a_region_whose_record_rate_rises_by_half_is_named_and_nothing_else() -> None:
    rng = np.random.default_rng(1)
    reference = _persons(rng, 40_000)
    current = _persons(rng, 40_000, factor={"R2": 1.5})
    out = rate_drift(reference, current, SETTINGS, GROUPS)
    assert _alerts(out) == {("cases_90d", "region", "R2")}
    r2 = next(r for r in out if (r.input, r.group) == ("cases_90d", "R2"))
    assert r2.relative is not None and r2.relative_lower is not None
    assert r2.relative_lower > 1.1 and 1.3 < r2.relative < 1.7
    # the other regions are compared with the regions that did not move (their rest leaves
    # R2 out): their intervals hold 1, and their mean is near 1, not near 1 / 1.13
    others = [
        r for r in out if r.input == "cases_90d" and r.group_column == "region" and r.group != "R2"
    ]
    for r in others:
        assert r.relative_lower is not None and r.relative_upper is not None
        assert r.relative_lower < 1.0 < r.relative_upper
    assert np.mean([r.relative for r in others]) == pytest.approx(1.0, abs=0.06)
    breaches = rate_breaches(out)
    assert [(b.kind, b.figure, b.group) for b in breaches] == [
        ("rate_drift", "rate:cases_90d", "R2")
    ]


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_the_same_distribution_twice_raises_nothing(seed: int) -> None:
    rng = np.random.default_rng(seed)
    out = rate_drift(_persons(rng, 40_000), _persons(rng, 40_000), SETTINGS, GROUPS)
    assert _alerts(out) == set()
    assert {r.status for r in out} == {"ok"}
    assert len(out) == 2 * (1 + len(REGIONS) + 3)


def test_a_trend_common_to_every_group_cancels_but_a_large_one_shows_overall() -> None:
    rng = np.random.default_rng(5)
    reference = _persons(rng, 40_000)
    risen = _persons(rng, 40_000, rate=0.12 * 1.3)
    out = rate_drift(reference, risen, SETTINGS, GROUPS)
    assert _alerts(out) == set()
    overall = next(r for r in out if (r.input, r.group_column) == ("cases_90d", "all"))
    assert overall.ratio is not None and 1.15 < overall.ratio < 1.45
    doubled = rate_drift(reference, _persons(rng, 40_000, rate=0.24), SETTINGS, GROUPS)
    assert _alerts(doubled) == {("cases_90d", "all", "all")}


def test_small_groups_and_rare_events_are_insufficient_evidence() -> None:
    rng = np.random.default_rng(6)
    reference, current = _persons(rng, 400, rate=0.02), _persons(rng, 400, rate=0.06)
    out = rate_drift(reference, current, SETTINGS, GROUPS)
    cases = [r for r in out if r.input == "cases_90d"]
    assert {r.status for r in cases} == {"insufficient_evidence"}


def test_the_interval_holds_the_overdispersion_a_bootstrap_sees() -> None:
    rng = np.random.default_rng(7)
    reference, current = _persons(rng, 20_000), _persons(rng, 20_000)
    settings = RateSettings(inputs=["cases_90d"], confidence=0.95)
    overall = rate_drift(reference, current, settings)[0]
    assert overall.dispersion is not None and overall.dispersion > 1.5  # not Poisson
    assert overall.ratio is not None and overall.ratio_upper is not None
    se = np.log(overall.ratio_upper / overall.ratio) / 1.959964
    x_ref, x_cur = (f["cases_90d"].to_numpy().astype(np.float64) for f in (reference, current))
    boot = [
        np.log(rng.choice(x_cur, len(x_cur)).mean() / rng.choice(x_ref, len(x_ref)).mean())
        for _ in range(400)
    ]
    assert se == pytest.approx(float(np.std(boot)), rel=0.15)
    poisson_se = np.sqrt(1 / x_ref.sum() + 1 / x_cur.sum())
    assert se > 1.2 * poisson_se


def test_the_check_carries_rate_drift_into_breaches_and_figures() -> None:
    rng = np.random.default_rng(8)
    reference = _persons(rng, 40_000)
    current = _persons(rng, 40_000, factor={"R2": 1.5})
    reference, current = (
        f.with_columns(pl.lit(0.2).alias("probability"), pl.lit("F").alias("sex"))
        for f in (reference, current)
    )
    config = MonitoringConfig(
        config_version="t",
        group_columns=["sex", "region"],
        drift=DriftSettings(seed=3),
        rates=SETTINGS,
        estimate=EstimateSettings(replicates=20),
    )
    result = run_check(
        CheckInputs(
            model="m",
            version="1",
            as_of=date(2025, 3, 31),
            checked_at=datetime(2026, 1, 1, tzinfo=UTC),
            reference_note="test snapshot",
            reference=reference,
            current=current,
            inputs=["cases_90d", "admin_365d"],
            categorical=[],
            tiers=[Tier("low", 0.0), Tier("high", 0.35)],
        ),
        config,
        load_policy(),
    )
    assert {(b.kind, b.group) for b in result.breaches if b.kind == "rate_drift"} == {
        ("rate_drift", "R2")
    }
    figs = figures(result)
    by_name = {(f.name, tuple(sorted(f.labels.items()))): f.value for f in figs}
    key = (
        ("bound", "lower"),
        ("group", "R2"),
        ("group_column", "region"),
        ("input", "cases_90d"),
    )
    assert by_name[("input_rate_relative", key)] > 1.1
    assert by_name[("breaches", (("kind", "rate_drift"),))] == 1.0
    assert any(f.name == "input_rate_ratio" and f.labels["group"] == "all" for f in figs)
    # a stored check without the part (older store rows) still loads
    dumped = result.model_dump(mode="json")
    dumped.pop("rate_drift")
    assert type(result).model_validate(dumped).rate_drift == []
