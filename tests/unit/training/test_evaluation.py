"""Evaluation metrics on hand-checkable cases; plots build without pyplot."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from matplotlib.figure import Figure
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from riskcast.errors import InputError
from training.evaluation import (
    binary_metrics,
    bootstrap_auc_difference,
    calibration_by_group,
    capture_at,
    expected_calibration_error,
    plot_calibration,
    plot_capture,
    plot_roc,
)


def _calibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 5, n)
    return (rng.uniform(size=n) < p).astype(float), p


def test_capture_on_a_tiny_array() -> None:
    # 20 rows, 4 positives; the top 5% is 1 row (a positive), the top 10% 2 rows (1 positive),
    # the top 20% 4 rows (3 positives).
    p = np.linspace(1.0, 0.05, 20)
    y = np.zeros(20)
    y[[0, 2, 3, 10]] = 1
    m = binary_metrics(y, p)
    assert m["capture_top_5"] == pytest.approx(1 / 4)
    assert m["capture_top_10"] == pytest.approx(1 / 4)
    assert m["capture_top_20"] == pytest.approx(3 / 4)
    assert m["n"] == 20
    assert m["observed_rate"] == pytest.approx(0.2)


def test_capture_of_a_constant_score_is_the_share_listed() -> None:
    y = np.array([1, 0, 1, 0, 0, 0, 1, 0, 0, 0], dtype=float)
    assert capture_at(y, np.full(10, 0.3), 20) == pytest.approx(0.2)


def test_metrics_agree_with_sklearn() -> None:
    y, p = _calibrated(3_000, 1)
    m = binary_metrics(y, p)
    assert m["auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["brier"] == pytest.approx(brier_score_loss(y, p))
    assert m["log_loss"] == pytest.approx(log_loss(y, p))
    assert m["mean_predicted"] == pytest.approx(p.mean())
    assert set(m) == {
        "auc",
        "pr_auc",
        "brier",
        "log_loss",
        "ece",
        "capture_top_5",
        "capture_top_10",
        "capture_top_20",
        "mean_predicted",
        "observed_rate",
        "n",
    }


def test_ece_small_when_calibrated_large_when_shifted() -> None:
    y, p = _calibrated(50_000, 2)
    assert expected_calibration_error(y, p) < 0.01
    assert expected_calibration_error(y, np.clip(p + 0.1, 0, 1)) == pytest.approx(0.1, abs=0.01)


def test_ece_by_hand() -> None:
    # Two equal-frequency bins: scores 0.1 (observed 0) and 0.9 (observed 1/2).
    y = np.array([0, 0, 1, 0], dtype=float)
    p = np.array([0.1, 0.1, 0.9, 0.9])
    assert expected_calibration_error(y, p, bins=2) == pytest.approx(0.5 * 0.1 + 0.5 * 0.4)


def test_single_class_gives_nan_auc_not_an_error() -> None:
    m = binary_metrics(np.zeros(5), np.full(5, 0.1))
    assert np.isnan(m["auc"])
    assert m["brier"] == pytest.approx(0.01)


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="0 or 1"):
        binary_metrics(np.array([0, 2]), np.array([0.1, 0.2]))
    with pytest.raises(InputError, match="probabilities"):
        binary_metrics(np.array([0, 1]), np.array([0.1, 1.2]))
    with pytest.raises(InputError, match="outcomes but"):
        binary_metrics(np.array([0, 1]), np.array([0.1]))


def test_bootstrap_difference_is_paired() -> None:
    y, p = _calibrated(2_000, 3)
    rng = np.random.default_rng(0)
    noisy = np.clip(p + rng.normal(0, 0.15, p.size), 0, 1)
    mean, sd = bootstrap_auc_difference(y, p, noisy, n_boot=200, seed=1)
    assert mean == pytest.approx(roc_auc_score(y, p) - roc_auc_score(y, noisy), abs=0.01)
    assert 0 < sd < 0.03
    same_mean, same_sd = bootstrap_auc_difference(y, p, p, n_boot=50)
    assert same_mean == 0 and same_sd == 0


def test_calibration_by_group() -> None:
    y, p = _calibrated(20_000, 4)
    groups = np.where(np.arange(y.size) % 4 == 0, "small", "large")
    shifted = np.where(groups == "small", np.clip(p + 0.15, 0, 1), p)
    frame = calibration_by_group(y, shifted, groups)
    assert frame.columns == [
        "group",
        "n",
        "mean_predicted",
        "observed",
        "decile_gap",
        "gap_if_calibrated",
        "calibration_slope",
    ]
    rows = {r["group"]: r for r in frame.iter_rows(named=True)}
    assert frame["group"].to_list() == ["large", "small"]
    assert rows["large"]["n"] == 15_000
    assert rows["large"]["decile_gap"] < 0.02
    assert rows["large"]["gap_if_calibrated"] == pytest.approx(0.8 * np.sqrt(0.2 / 1500), rel=0.5)
    assert rows["large"]["calibration_slope"] == pytest.approx(1.0, abs=0.1)
    assert rows["small"]["decile_gap"] == pytest.approx(0.15, abs=0.02)
    assert isinstance(frame, pl.DataFrame)


def test_plots_return_figures() -> None:
    y, p = _calibrated(500, 5)
    scores = {"model": p, "noise": np.random.default_rng(1).uniform(size=p.size)}
    for fig in (plot_calibration(y, scores), plot_roc(y, scores), plot_capture(y, scores)):
        assert isinstance(fig, Figure)
        assert fig.axes[0].get_legend() is not None
