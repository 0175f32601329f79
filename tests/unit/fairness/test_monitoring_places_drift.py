"""The places input drift rule (`fairness.monitoring.places_drift`): a window of recent weeks
against the same weeks a year before, quasi-Poisson rate ratios, BH across all tests, a band.

The cell frames are simulated the way the places inputs arise: weekly incident counts per cell
(heterogeneous cell rates, many cells nearly always zero, a seasonal cycle, district-week
shocks that make the counts overdispersed), and the features a cell frame holds built from
them at each weekly origin (single-week lags, sums over windows that overlap between
consecutive origins, an exponentially weighted intensity, a calendar term)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from fairness.monitoring.places_config import PlacesDriftSettings, PlacesMonitoringSettings
from fairness.monitoring.places_drift import (
    benjamini_hochberg,
    dispersion,
    drift_history,
    places_input_drift,
    ratio_p_value,
)

WEEKS = 170
CHECK = WEEKS - 1  # the check's origin (week index)
FIRST_SUNDAY = date(2022, 1, 2)
INPUTS = ["count_lag1", "count_lag4", "count_4w", "count_13w", "count_52w", "intensity_hl2w"]


def _counts(seed: int, change: float = 1.0, since: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Weekly counts (cells x weeks) of 32 districts x 60 cells and each cell's district;
    district 0's counts are multiplied by ``change`` from ``since`` weeks before the check."""
    rng = np.random.default_rng(seed)
    districts = np.repeat(np.arange(32), 60)
    size = rng.gamma(8.0, 1 / 8.0, 32)
    size[0] = 2.0  # district 0: a busy one (~25 incidents a week), where a change can be seen
    rate = rng.gamma(0.6, 0.35, districts.size) * size[districts]
    week = np.arange(WEEKS)
    season = 1 + 0.35 * np.sin(2 * np.pi * week / 52.0)
    shock = rng.gamma(40.0, 1 / 40.0, (32, WEEKS))[districts]  # district-week weather, events
    mean = rate[:, None] * season[None, :] * shock
    mean[districts == 0, CHECK - since + 1 :] *= change
    return rng.poisson(mean), districts


def _frame(counts: np.ndarray, districts: np.ndarray, origins: list[int]) -> pl.DataFrame:
    """The cell frame at the weekly ``origins`` (week indices): one row per cell and origin."""
    cum = np.concatenate([np.zeros((counts.shape[0], 1)), np.cumsum(counts, axis=1)], axis=1)
    parts = []
    for t in origins:

        def window(w: int, t: int = t) -> np.ndarray:
            return cum[:, t + 1] - cum[:, t + 1 - w]

        weights = 0.5 ** (np.arange(26) / 2.0)
        intensity = counts[:, t - 25 : t + 1][:, ::-1] @ weights
        parts.append(
            pl.DataFrame(
                {
                    "cell_id": np.arange(counts.shape[0]),
                    "as_of": [FIRST_SUNDAY + timedelta(weeks=t)] * counts.shape[0],
                    "region": [f"R{d // 8}" for d in districts],
                    "district": [f"D{d:02d}" for d in districts],
                    "count_lag1": counts[:, t],
                    "count_lag4": counts[:, t - 3],
                    "count_4w": window(4),
                    "count_13w": window(13),
                    "count_52w": window(52),
                    "intensity_hl2w": intensity,
                    "week_sin": np.full(counts.shape[0], np.sin(2 * np.pi * t / 52.0)),
                }
            )
        )
    return pl.concat(parts)


def _check(counts: np.ndarray, districts: np.ndarray, s: PlacesDriftSettings):  # type: ignore[no-untyped-def]
    window = [CHECK - k for k in range(s.window_weeks)]
    reference = [t - s.season_lag_weeks for t in window]
    return places_input_drift(
        _frame(counts, districts, reference),
        _frame(counts, districts, window),
        [*INPUTS, "week_sin"],
        s,
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_stationary_delivery_raises_no_alert(seed: int) -> None:
    s = PlacesMonitoringSettings().drift
    counts, districts = _counts(seed)
    drift = _check(counts, districts, s)
    assert drift.alerts() == []
    assert drift.tests > 6 * 20  # most (input, group) cells had the evidence to be tested
    assert drift.skipped == ["week_sin"]  # negative: a calendar term, not a rate
    overall = next(r for r in drift.rows if r.group_column == "all" and r.input == "count_52w")
    assert overall.ratio is not None and 0.9 < overall.ratio < 1.1  # the season cancels


def test_a_change_by_half_in_one_district_is_caught_and_nowhere_else() -> None:
    s = PlacesMonitoringSettings().drift
    counts, districts = _counts(seed=1, change=1.5)
    drift = _check(counts, districts, s)
    alerts = drift.alerts()
    assert alerts, "the x1.5 district was missed"
    assert {(a.group_column, a.group) for a in alerts} <= {("district", "D00"), ("region", "R0")}
    caught = {a.input for a in alerts if a.group == "D00"}
    assert caught & {"count_13w", "count_4w", "intensity_hl2w"}
    for a in alerts:
        assert a.lower is not None and a.lower > 1.0 and a.q_value is not None
        assert a.q_value <= s.fdr


def test_the_test_weeks_of_another_season_would_have_alerted() -> None:
    """Why the reference is the same weeks a year before: against weeks half a year away the
    season alone moves every district's counts by a third, beyond the band."""
    s = PlacesMonitoringSettings().drift
    counts, districts = _counts(seed=1)
    window = [CHECK - k for k in range(s.window_weeks)]
    off_season = [t - 26 for t in window]
    drift = places_input_drift(
        _frame(counts, districts, off_season), _frame(counts, districts, window), INPUTS, s
    )
    assert len(drift.alerts()) > 10


def test_a_change_inside_the_band_never_alerts() -> None:
    s = PlacesMonitoringSettings().drift
    counts, districts = _counts(seed=2, change=1.15, since=80)
    assert _check(counts, districts, s).alerts() == []


def test_ratio_p_value_and_bh() -> None:
    assert ratio_p_value(0.0, 0.1) == pytest.approx(1.0)
    assert ratio_p_value(1.959964 * 0.1, 0.1) == pytest.approx(0.05, rel=1e-4)
    assert ratio_p_value(-1.959964 * 0.1, 0.1) == pytest.approx(0.05, rel=1e-4)
    q = benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.5]))
    assert q.tolist() == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.5])  # step-up, monotone
    assert benjamini_hochberg(np.array([])).size == 0


def test_dispersion_recovers_overdispersion_and_ignores_a_few_outliers() -> None:
    rng = np.random.default_rng(5)
    mean = rng.gamma(5.0, 40.0, 200)
    phi = 4.0  # counts of four-times-overlapping windows: variance 16 x, mean 4 x
    s_ref = phi * rng.poisson(mean / phi)
    s_cur = phi * rng.poisson(mean / phi)
    n = np.full(200, 100.0)
    assert dispersion(s_ref, s_cur, n, n) == pytest.approx(phi, rel=0.3)
    s_cur[:5] *= 3  # five districts that did change
    assert dispersion(s_ref, s_cur, n, n) == pytest.approx(phi, rel=0.35)


def test_settings_refuse_unknown_keys_and_a_band_without_one() -> None:
    with pytest.raises(ValueError):
        PlacesDriftSettings.model_validate({"window": 4})
    with pytest.raises(ValueError):
        PlacesDriftSettings(ratio_low=1.1, ratio_high=1.25)


def test_the_history_needed_is_a_year_plus_the_longest_window() -> None:
    """The reference origins (52 weeks before the window) look back 156 weeks: the store must
    start by the Monday that opens the oldest one's longest window (its first week)."""
    window = [date(2025, 12, 28) - timedelta(weeks=k) for k in range(8)]
    reference = [t - timedelta(weeks=52) for t in window]
    needed = date(2024, 11, 10) - timedelta(weeks=156) + timedelta(days=1)
    assert needed.weekday() == 0  # a Monday, the first day of a week of the builder's grid
    assert min(reference) == date(2024, 11, 10)
    at = drift_history(reference, 156, needed, 52)
    assert at.enough and at.needed_from == needed and at.reference_first == date(2024, 11, 10)
    assert drift_history(reference, 156, needed + timedelta(days=6), 52).enough  # same week
    short = drift_history(reference, 156, needed + timedelta(days=7), 52)
    assert not short.enough
    assert short.message.startswith("insufficient history: needs weekly origins from 2024-11-10")
    assert needed.isoformat() in short.message and "store starts at 2021-11-22" in short.message
    empty = drift_history(reference, 156, None, 52)
    assert not empty.enough and "no incident" in empty.message
    assert drift_history(reference, 52, needed + timedelta(days=7), 52).enough  # 1-year windows


def test_each_group_states_whether_it_can_see_a_change_at_the_band() -> None:
    """A district's state follows its quarter count's effective events: the busy district 0
    can tell a change at the band's edge (1.25) from noise, quiet ones cannot; the detectable
    ratio is the half-width of the interval on the log scale (an unmoved row's interval is
    ratio x/÷ detectable), and a x1.5 change in a district 'insufficient for the band' by a
    wide margin stays unseen, as the state warns."""
    s = PlacesMonitoringSettings().drift.model_copy(update={"evidence_input": "count_13w"})
    counts, districts = _counts(seed=1)
    drift = _check(counts, districts, s)
    states = {(e.group_column, e.group): e for e in drift.evidence}
    assert len(states) == 1 + 4 + 32 and all(e.input == "count_13w" for e in drift.evidence)
    assert states[("district", "D00")].state == "enough for the band"
    assert states[("all", "all")].state == "enough for the band"
    short = [e for e in drift.evidence if e.state == "insufficient for the band"]
    assert len(short) >= 10
    for e in short:
        assert e.detectable_ratio is not None and e.detectable_ratio > s.ratio_high
        assert e.effective_count >= s.min_effective_count
    for e in drift.evidence:
        row = next(r for r in drift.rows if (r.group_column, r.group, r.input) ==
                   (e.group_column, e.group, "count_13w"))  # fmt: skip
        assert row.effective_count == pytest.approx(e.effective_count)
        if row.lower is not None and row.upper is not None and 0.9 < (row.ratio or 0) < 1.1:
            half = float(np.sqrt(row.upper / row.lower))
            assert row.detectable_ratio == pytest.approx(half, rel=0.1)
    quietest = min(short, key=lambda e: e.effective_count)
    k = int(quietest.group[1:])
    rng = np.random.default_rng(0)
    changed = counts.copy()
    inside = districts == k
    changed[inside, CHECK - 29 :] = rng.poisson(counts[inside, CHECK - 29 :] * 1.5)
    again = _check(changed, districts, s)
    assert not [a for a in again.alerts() if a.group == quietest.group]


def test_a_group_below_the_minimum_is_insufficient_evidence() -> None:
    s = PlacesMonitoringSettings().drift.model_copy(
        update={"evidence_input": "count_13w", "min_effective_count": 1e6}
    )
    counts, districts = _counts(seed=2)
    drift = _check(counts, districts, s)
    assert {e.state for e in drift.evidence} == {"insufficient evidence"}
    assert drift.alerts() == [] and drift.tests == 0
