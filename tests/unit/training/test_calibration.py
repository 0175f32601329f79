"""Calibrators: Platt recovers a known distortion, isotonic is monotone, the choice is by Brier."""

from __future__ import annotations

import numpy as np
import pytest

from riskcast.errors import InputError
from training.calibration import (
    Calibrator,
    choose_calibrator,
    fit_calibrator,
    logit,
    sigmoid,
)


def _distorted(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True probabilities q, outcomes y, and an over-confident raw score sigmoid(2*logit(q))."""
    rng = np.random.default_rng(seed)
    q = rng.uniform(0.05, 0.8, n)
    y = (rng.uniform(size=n) < q).astype(float)
    return q, y, sigmoid(2.0 * logit(q))


def test_logit_sigmoid_round_trip() -> None:
    p = np.array([0.01, 0.2, 0.5, 0.9])
    assert np.allclose(sigmoid(logit(p)), p)
    assert np.all(np.isfinite(logit(np.array([0.0, 1.0]))))


def test_platt_recovers_slope_of_over_confident_model() -> None:
    _, y, raw = _distorted(20_000, 1)
    cal = fit_calibrator(raw, y, "platt")
    assert cal.method == "platt"
    assert isinstance(cal, Calibrator)
    assert cal.slope == pytest.approx(0.5, abs=0.05)  # type: ignore[attr-defined]
    assert cal.intercept == pytest.approx(0.0, abs=0.05)  # type: ignore[attr-defined]


def test_isotonic_is_monotone_and_bounded() -> None:
    _, y, raw = _distorted(2_000, 2)
    cal = fit_calibrator(raw, y, "isotonic")
    grid = np.linspace(-0.5, 1.5, 301).clip(0, 1)
    out = cal.predict(grid)
    assert cal.method == "isotonic"
    assert np.all(np.diff(out) >= 0)
    assert np.all((out > 0) & (out < 1))


def test_calibration_improves_brier_on_fresh_data() -> None:
    _, y, raw = _distorted(5_000, 3)
    _, y2, raw2 = _distorted(5_000, 4)
    for method in ("platt", "isotonic"):
        cal = fit_calibrator(raw, y, method)
        assert np.mean((cal.predict(raw2) - y2) ** 2) < np.mean((raw2 - y2) ** 2)


def test_choose_calibrator_picks_lower_check_brier() -> None:
    _, y, raw = _distorted(4_000, 5)
    _, y2, raw2 = _distorted(4_000, 6)
    chosen = choose_calibrator(raw, y, raw2, y2)
    briers = {
        m: float(np.mean((fit_calibrator(raw, y, m).predict(raw2) - y2) ** 2))
        for m in ("platt", "isotonic")
    }
    assert chosen.method == min(briers, key=lambda m: briers[m])
    # A step-shaped distortion only isotonic can follow: isotonic must win.
    rng = np.random.default_rng(7)
    r = rng.uniform(size=6_000)
    truth = np.where(r < 0.5, 0.1, 0.6)
    yy = (rng.uniform(size=r.size) < truth).astype(float)
    assert choose_calibrator(r[:3000], yy[:3000], r[3000:], yy[3000:]).method == "isotonic"


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="one class"):
        fit_calibrator(np.array([0.2, 0.3]), np.array([1.0, 1.0]), "platt")
    with pytest.raises(InputError, match="0 or 1"):
        fit_calibrator(np.array([0.2, 0.3]), np.array([2.0, 0.0]), "platt")
    with pytest.raises(InputError, match="unknown method"):
        fit_calibrator(np.array([0.2, 0.3]), np.array([1.0, 0.0]), "beta")  # type: ignore[arg-type]
