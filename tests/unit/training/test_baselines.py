"""Baselines: logistic regression learns a known signal; the points scale is integer and small."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from riskcast.errors import InputError
from training.baselines import LogisticBaseline, PointsScale


def _frame(n: int, seed: int) -> tuple[pl.DataFrame, np.ndarray]:
    """priors (count, +), age (-), noise; priors partly missing."""
    rng = np.random.default_rng(seed)
    priors = rng.poisson(2.0, n).astype(float)
    age = rng.uniform(18, 70, n)
    noise = rng.normal(size=n)
    z = -1.0 + 0.9 * np.log1p(priors) - 0.04 * (age - 35)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype(float)
    priors_seen = np.where(rng.uniform(size=n) < 0.05, np.nan, priors)
    frame = pl.DataFrame({"priors": priors_seen, "age": age, "noise": noise, "flag": noise > 1})
    return frame, y


def test_logistic_baseline_learns_signal() -> None:
    x, y = _frame(4_000, 1)
    xt, yt = _frame(2_000, 2)
    model = LogisticBaseline(["priors", "age", "noise", "flag"], ["priors"]).fit(x, y)
    p = model.predict_proba(xt)
    assert p.shape == (2_000,) and np.all((p > 0) & (p < 1))
    assert roc_auc_score(yt, p) > 0.68
    desc = model.describe()
    coefs = desc["coefficients_per_sd"]
    assert coefs["priors"] > 0.3 and coefs["age"] < -0.3
    assert abs(coefs["noise"]) < 0.1
    assert "missing: priors" in coefs  # the indicator for missing priors


def test_logistic_baseline_errors() -> None:
    x, y = _frame(100, 3)
    with pytest.raises(InputError, match="not in features"):
        LogisticBaseline(["age"], ["priors"])
    with pytest.raises(InputError, match="not in the frame"):
        LogisticBaseline(["nope"], []).fit(x, y)
    with pytest.raises(InputError, match="not text"):
        LogisticBaseline(["s"], []).fit(pl.DataFrame({"s": ["a"] * 100}), y)
    with pytest.raises(InputError, match="fit"):
        LogisticBaseline(["age"], []).predict_proba(x)


def test_points_scale_integer_weights_and_monotone_risk() -> None:
    x, y = _frame(6_000, 4)
    xt, yt = _frame(3_000, 5)
    scale = PointsScale(["priors", "age", "noise"], {"priors": 1, "age": -1}).fit(x, y)
    desc = scale.describe()
    assert 1 <= len({r["factor"].split()[0] for r in desc["points"]}) <= 6
    for row in desc["points"]:
        assert isinstance(row["points"], int) and 1 <= row["points"] <= 3
    factors = [r["factor"] for r in desc["points"]]
    assert any(f.startswith("priors >") for f in factors)
    assert any(f.startswith("age <") for f in factors)  # direction -1 reads "below"
    risk = list(desc["risk_by_total"].values())
    assert risk == sorted(risk)  # more points, never less risk
    p = scale.predict_proba(xt)
    assert roc_auc_score(yt, p) > 0.64
    points = scale.points(xt)
    assert points.dtype == np.int64 and points.min() >= 0
    # probability is a function of the total only
    assert len(np.unique(p)) <= len(np.unique(points))


def test_points_scale_by_hand() -> None:
    # one binary factor: the risk per total is the smoothed empirical rate per group
    x = pl.DataFrame({"flag": [0] * 500 + [1] * 500})
    y = np.array([1] * 100 + [0] * 400 + [1] * 300 + [0] * 200, dtype=float)
    scale = PointsScale(["flag"], {"flag": 1}, smoothing=0.0).fit(x, y)
    assert scale.describe()["points"] == [{"factor": "flag > 0", "points": 3}]
    assert scale.predict_proba(pl.DataFrame({"flag": [0, 1]})) == pytest.approx([0.2, 0.6])


def test_points_scale_errors() -> None:
    with pytest.raises(InputError, match=r"\+1 or -1"):
        PointsScale(["a"], {"a": 2})
    with pytest.raises(InputError, match="no feature varies"):
        PointsScale(["a"], {}).fit(pl.DataFrame({"a": [1.0] * 10}), np.array([0, 1] * 5))
