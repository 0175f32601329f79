"""fairness.metrics: hand-computed cases, insufficient evidence, CI coverage by simulation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fairness.metrics import (
    auc_rows,
    audit_attribute,
    exact_interval,
    operating_points,
    rates,
    top_share_flags,
)
from fairness.results import INSUFFICIENT, AttributeAudit, Estimate, GroupMetrics

Y = np.array([1, 1, 0, 0, 1, 0], dtype=float)
S = np.array([0.9, 0.4, 0.8, 0.1, 0.7, 0.2])
G = np.array(["A", "A", "A", "B", "B", "B"])


def _audit(**kw: object) -> AttributeAudit:
    args: dict[str, Any] = {"reference": "B", "min_group_size": 1, "n_boot": 50, "seed": 1} | kw
    return audit_attribute("g", Y, S, G, operating_points(S, 0.5, [50]), **args)


def _row(audit: AttributeAudit, group: str) -> GroupMetrics:
    return next(r for r in audit.groups if r.group == group)


def _bounds(est: Estimate) -> tuple[float, float]:
    """The interval of ``est`` (which must have one)."""
    assert est.low is not None and est.high is not None, est
    return est.low, est.high


def test_hand_computed_group_metrics() -> None:
    audit = _audit()
    a, b = _row(audit, "A"), _row(audit, "B")
    assert (a.n, a.positives, b.n, b.positives) == (3, 2, 3, 1)
    at_a = {m: v.value for m, v in a.points["threshold"].items()}
    assert at_a == pytest.approx({"selection_rate": 2 / 3, "fpr": 1.0, "fnr": 0.5, "ppv": 0.5})
    at_b = {m: v.value for m, v in b.points["threshold"].items()}
    assert at_b == pytest.approx({"selection_rate": 1 / 3, "fpr": 0.0, "fnr": 0.0, "ppv": 1.0})
    assert a.overall["auc"].value == pytest.approx(0.5)
    assert b.overall["auc"].value == pytest.approx(1.0)
    assert a.overall["base_rate"].value == pytest.approx(2 / 3)
    assert a.overall["calibration_gap"].value == pytest.approx(0.7 - 2 / 3)
    # top 50% of all six rows = the three highest scores (0.9, 0.8, 0.7): same flags here
    top = {m: v.value for m, v in a.points["top_50%"].items()}
    assert top == pytest.approx(at_a)


def test_disparities_difference_ratio_and_undefined_ratio() -> None:
    audit = _audit()
    d = {(x.point, x.metric): x for x in audit.disparities if x.group == "A"}
    assert d[("threshold", "fpr")].difference.value == pytest.approx(1.0)
    assert d[("threshold", "fpr")].ratio.value is None  # reference FPR is 0: undefined
    assert d[("threshold", "ppv")].ratio.value == pytest.approx(0.5)
    assert d[("overall", "auc")].difference.value == pytest.approx(-0.5)
    assert audit.composition["threshold"] == pytest.approx({"A": 2 / 3, "B": 1 / 3})


def test_rates_without_events_get_exact_intervals_not_zero_width_ones() -> None:
    """A count of 0 (or all) is the same in every bootstrap replicate: its interval would be
    [0, 0]. It gets the Clopper-Pearson interval, and disparities with it combine bounds."""
    from scipy.stats import binomtest

    assert exact_interval(0, 600, 0.95) == pytest.approx((0.0, 1 - 0.025 ** (1 / 600)))
    assert exact_interval(600, 600, 0.95) == pytest.approx((0.025 ** (1 / 600), 1.0))
    ci = binomtest(7, 40).proportion_ci(0.9, method="exact")
    assert exact_interval(7, 40, 0.9) == pytest.approx((ci.low, ci.high))

    audit = _audit()
    fpr_a = _row(audit, "A").points["threshold"]["fpr"]  # 1 of 1 negative flagged
    fpr_b = _row(audit, "B").points["threshold"]["fpr"]  # 0 of 2 negatives flagged
    assert (fpr_a.low, fpr_a.high) == pytest.approx((0.025, 1.0))
    assert (fpr_b.low, fpr_b.high) == pytest.approx((0.0, 1 - 0.025**0.5))
    d = next(
        x for x in audit.disparities if (x.group, x.point, x.metric) == ("A", "threshold", "fpr")
    )
    diff = d.difference
    assert (diff.value, diff.low, diff.high) == pytest.approx((1.0, 0.025 - (1 - 0.025**0.5), 1.0))
    assert d.ratio == Estimate(value=None, low=None, high=None)  # B's FPR may be 0


def test_vectorised_helpers() -> None:
    r = rates(Y[:3], np.array([1.0, 0.0, 1.0]))
    assert float(r["fpr"]) == 1.0 and float(r["fnr"]) == 0.5
    assert np.isnan(rates(np.ones(3), np.ones(3))["fpr"])  # no negatives: undefined, not 0
    assert float(auc_rows(np.array([0.0, 1.0, 0.0, 1.0]), np.array([0.1, 0.5, 0.5, 0.9]))) == 0.875
    assert top_share_flags(np.array([0.1, 0.5, 0.5, 0.9]), 50).tolist() == [
        False,
        True,
        False,
        True,
    ]


def test_small_group_is_insufficient_evidence_not_dropped_or_zero() -> None:
    rng = np.random.default_rng(0)
    n = 230
    y = rng.integers(0, 2, n).astype(float)
    s = rng.random(n)
    g = np.array(["big"] * 200 + ["small"] * 30)
    audit = audit_attribute(
        "g", y, s, g, operating_points(s, 0.5, [10]), min_group_size=50, n_boot=20
    )
    small = _row(audit, "small")
    assert small.status == INSUFFICIENT and small.n == 30
    values = [v.value for p in small.points.values() for v in p.values()]
    assert values and all(v is None for v in values)
    assert all(v.value is None for v in small.overall.values())
    dis = [d for d in audit.disparities if d.group == "small"]
    assert dis and all(d.status == INSUFFICIENT for d in dis)
    assert all(d.difference.value is None for d in dis)
    assert audit.reference == "big"  # the largest group by default


def test_bootstrap_intervals_cover_the_true_value() -> None:
    """Two identical groups: FPR and selection rate 0.3 each, their difference 0."""
    rng = np.random.default_rng(123)
    sims, n = 80, 300
    hits = {"fpr": 0, "selection_rate": 0, "diff": 0}
    g = np.array(["A"] * n + ["B"] * n)
    for i in range(sims):
        y = (rng.random(2 * n) < 0.4).astype(float)
        s = rng.random(2 * n)  # independent of y: FPR = P(s >= 0.7) = 0.3
        audit = audit_attribute(
            "g", y, s, g, operating_points(s, 0.7, []), reference="A", n_boot=200, seed=i
        )
        at = _row(audit, "A").points["threshold"]
        for metric in ("fpr", "selection_rate"):
            low, high = _bounds(at[metric])
            hits[metric] += low <= 0.3 <= high
        d = next(x for x in audit.disparities if x.metric == "fpr")
        low, high = _bounds(d.difference)
        hits["diff"] += low <= 0.0 <= high
    for name, k in hits.items():
        assert 0.86 <= k / sims <= 1.0, (name, k / sims)


def test_mismatched_inputs_are_refused() -> None:
    from riskcast.errors import InputError

    with pytest.raises(InputError):
        audit_attribute("g", Y[:5], S, G, {}, min_group_size=1)
    with pytest.raises(InputError, match="reference"):
        audit_attribute("g", Y, S, G, {}, reference="C", min_group_size=1)
