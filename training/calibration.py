"""Calibration: map a model's raw probabilities to probabilities that mean what they say.

Two methods, both fitted on held-out predictions (never on the rows the model was fitted on):

- ``platt``: a logistic regression of the outcome on ``logit(p_raw)`` (two parameters; smooth,
  hard to overfit, but assumes the miscalibration is sigmoid-shaped);
- ``isotonic``: a monotone step function (flexible, needs more data, can overfit small sets).

:func:`choose_calibrator` fits both on the calibration data and keeps the one with the lower
Brier score on *later* check data, so the choice is itself out-of-sample.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.isotonic import IsotonicRegression

from riskcast.errors import InputError

Method = Literal["isotonic", "platt"]
FloatArray = NDArray[np.float64]

#: Calibrated probabilities are kept inside [EPS, 1 - EPS] so log loss stays finite.
EPS = 1e-6


@runtime_checkable
class Calibrator(Protocol):
    """A fitted map from raw to calibrated probability."""

    @property
    def method(self) -> Method: ...

    def predict(self, p_raw: ArrayLike) -> FloatArray: ...


def logit(p: ArrayLike, eps: float = EPS) -> FloatArray:
    """Log-odds of ``p``, clipped away from 0 and 1 so it is always finite."""
    q = np.clip(np.asarray(p, dtype=np.float64), eps, 1.0 - eps)
    return np.asarray(np.log(q) - np.log1p(-q), dtype=np.float64)


def sigmoid(z: ArrayLike) -> FloatArray:
    """Inverse of :func:`logit`, numerically stable for large ``|z|``."""
    x = np.asarray(z, dtype=np.float64)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ez = np.exp(x[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def fit_logistic_1d(
    x: ArrayLike, y: ArrayLike, *, ridge: float = 1e-6, max_iter: int = 100
) -> tuple[float, float]:
    """Unpenalised (up to a tiny ridge) logistic regression ``y ~ a + b x`` by Newton's method.

    Returns ``(intercept, slope)``. Used for Platt scaling and for the calibration slope; a
    tiny ridge keeps it finite on separable data instead of diverging.
    """
    xv = np.asarray(x, dtype=np.float64)
    yv = np.asarray(y, dtype=np.float64)
    design = np.column_stack([np.ones_like(xv), xv])
    beta = np.array([logit(np.clip(yv.mean(), 0.01, 0.99))[()], 0.0])
    for _ in range(max_iter):
        p = sigmoid(design @ beta)
        w = p * (1.0 - p)
        grad = design.T @ (yv - p) - ridge * beta
        hess = design.T @ (design * w[:, None]) + ridge * np.eye(2)
        step = np.linalg.solve(hess, grad)
        beta = beta + step
        if float(np.max(np.abs(step))) < 1e-10:
            break
    return float(beta[0]), float(beta[1])


def _check(p_raw: ArrayLike, y: ArrayLike) -> tuple[FloatArray, FloatArray]:
    p = np.asarray(p_raw, dtype=np.float64).ravel()
    yv = np.asarray(y, dtype=np.float64).ravel()
    if p.shape != yv.shape:
        raise InputError(f"calibration: {p.size} predictions but {yv.size} outcomes")
    if p.size == 0:
        raise InputError("calibration: no rows to fit on")
    if not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise InputError("calibration: predictions must be finite probabilities in [0, 1]")
    if not np.all(np.isin(yv, (0.0, 1.0))):
        raise InputError("calibration: outcomes must be 0 or 1")
    if np.unique(yv).size < 2:
        raise InputError("calibration: the calibration data holds only one class")
    return p, yv


class PlattCalibrator:
    """``sigmoid(a + b * logit(p_raw))``; ``b`` < 1 shrinks an over-confident model."""

    method: Method = "platt"

    def __init__(self, intercept: float, slope: float) -> None:
        self.intercept = intercept
        self.slope = slope

    def predict(self, p_raw: ArrayLike) -> FloatArray:
        z = self.intercept + self.slope * logit(p_raw)
        return np.clip(sigmoid(z), EPS, 1.0 - EPS)

    def __repr__(self) -> str:
        return f"PlattCalibrator(intercept={self.intercept:.4f}, slope={self.slope:.4f})"


class IsotonicCalibrator:
    """A monotone non-decreasing step function; raw scores outside the fitted range are clipped."""

    method: Method = "isotonic"

    def __init__(self, model: IsotonicRegression) -> None:
        self._model = model

    def predict(self, p_raw: ArrayLike) -> FloatArray:
        raw = np.asarray(p_raw, dtype=np.float64).ravel()
        out = np.asarray(self._model.predict(raw), dtype=np.float64)
        return np.clip(out, EPS, 1.0 - EPS)

    def __repr__(self) -> str:
        n = len(getattr(self._model, "X_thresholds_", []))
        return f"IsotonicCalibrator(thresholds={n})"


def fit_calibrator(p_raw: ArrayLike, y: ArrayLike, method: Method) -> Calibrator:
    """Fit a calibrator of the given ``method`` on held-out raw predictions and outcomes."""
    p, yv = _check(p_raw, y)
    if method == "platt":
        intercept, slope = fit_logistic_1d(logit(p), yv)
        return PlattCalibrator(intercept, slope)
    if method == "isotonic":
        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True)
        model.fit(p, yv)
        return IsotonicCalibrator(model)
    raise InputError(f"calibration: unknown method {method!r} (isotonic or platt)")


def _brier(p: FloatArray, y: FloatArray) -> float:
    return float(np.mean((p - y) ** 2))


def choose_calibrator(
    p_cal: ArrayLike, y_cal: ArrayLike, p_check: ArrayLike, y_check: ArrayLike
) -> Calibrator:
    """Fit isotonic and Platt on the calibration data; return the one with lower check Brier.

    The check data must be disjoint from the calibration data (out-of-time on registers: the
    later period), so the choice does not reward isotonic's tendency to overfit. Ties go to
    Platt, the simpler map. The returned calibrator is fitted on the calibration data only.
    """
    pc, yc = _check(p_check, y_check)
    candidates = [fit_calibrator(p_cal, y_cal, "platt"), fit_calibrator(p_cal, y_cal, "isotonic")]
    scores = [_brier(c.predict(pc), yc) for c in candidates]
    return candidates[int(np.argmin(scores))]  # argmin returns the first (Platt) on ties
