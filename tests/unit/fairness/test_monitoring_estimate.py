"""Label-free estimate vs realised performance (fairness.monitoring.estimate / .realised) on
simulated ground truth: draw p from a Beta per group, labels ~ Bernoulli(truth) with fixed
seeds, estimate from p alone, then compare with what the labels realise."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from fairness.monitoring.config import EstimateSettings, RealisedSettings
from fairness.monitoring.estimate import estimate_performance
from fairness.monitoring.realised import calibration_fit, compare, realised_performance
from riskcast.errors import InputError

GROUPS = {"A": (2.0, 5.0), "B": (1.5, 6.0), "C": (3.0, 4.0), "D": (2.0, 8.0)}
SETTINGS = EstimateSettings(replicates=100, seed=11, thresholds=[0.15, 0.35, 0.6])
REALISED = RealisedSettings()


def _period(rng: np.random.Generator, n: int, inflated: str | None = None) -> pl.DataFrame:
    """One period: ``n`` persons per group; in group ``inflated`` the true risk is half the
    score (the model over-predicts there)."""
    parts = []
    for group, (a, b) in GROUPS.items():
        p = rng.beta(a, b, n)
        truth = p / 2 if group == inflated else p
        y = (rng.random(n) < truth).astype(np.int64)
        parts.append(pl.DataFrame({"probability": p, "label": y, "grp": [group] * n}))
    return pl.concat(parts)


def _backtest(
    periods: int, n: int, inflated: str | None = None
) -> dict[str, dict[str, list[float]]]:
    rng = np.random.default_rng(2026)
    cells: dict[str, dict[str, list[float]]] = {
        g: {"auc_in": [], "fpr_in": [], "auc_err": []} for g in GROUPS
    }
    for _ in range(periods):
        frame = _period(rng, n, inflated)
        est = estimate_performance(frame.drop("label"), SETTINGS, ["grp"])
        real = realised_performance(frame, REALISED, SETTINGS.thresholds, ["grp"])
        for check in compare(est, real, REALISED):
            if check.group_column != "grp":
                continue
            m = {x.metric: x for x in check.metrics}
            cells[check.group]["auc_in"].append(float(bool(m["auc"].within_interval)))
            cells[check.group]["fpr_in"].append(float(bool(m["fpr@0.35"].within_interval)))
            cells[check.group]["auc_err"].append(abs(m["auc"].error or np.nan))
    return cells


def test_estimate_covers_realised_in_200_calibrated_cells() -> None:
    cells = _backtest(periods=50, n=3000)  # 4 groups x 50 periods = 200 cells
    auc_cover = np.mean([v for c in cells.values() for v in c["auc_in"]])
    fpr_cover = np.mean([v for c in cells.values() for v in c["fpr_in"]])
    assert sum(len(c["auc_in"]) for c in cells.values()) == 200
    assert auc_cover >= 0.90
    assert fpr_cover >= 0.90
    for group, c in cells.items():
        assert np.mean(c["auc_err"]) <= 0.02, group


def test_estimate_departs_when_one_group_is_miscalibrated() -> None:
    cells = _backtest(periods=20, n=3000, inflated="D")
    assert np.mean(cells["D"]["fpr_in"]) < 0.5
    assert np.mean(cells["D"]["auc_err"]) > 0.02
    for group in ("A", "B", "C"):
        assert np.mean(cells[group]["fpr_in"]) >= 0.8


@pytest.mark.parametrize("scores", [[0.2, 0.5, 0.9], [0.3, 0.3, 0.7, 0.1]])
def test_expected_auc_matches_exact_expectation_on_a_tiny_case(scores: list[float]) -> None:
    # all 2^n label vectors enumerated: E[num] / E[P*N] is the formula's value (ties count 1/2)
    p = np.array(scores)
    m = len(p)
    frame = pl.DataFrame({"probability": p})
    est = estimate_performance(frame, EstimateSettings(replicates=20, seed=1, thresholds=[0.35]))[0]
    num = den = 0.0
    for bits in range(2**m):
        y = np.array([(bits >> k) & 1 for k in range(m)], dtype=float)
        w = float(np.prod(np.where(y == 1, p, 1 - p)))
        den += w * y.sum() * (m - y.sum())
        num += w * sum(
            y[i] * (1 - y[j]) * ((p[i] > p[j]) + 0.5 * (p[i] == p[j]))
            for i in range(m)
            for j in range(m)
            if i != j
        )
    assert est.auc.value == pytest.approx(num / den, abs=1e-12)
    assert est.brier.value == pytest.approx(float(np.mean(p * (1 - p))))


def test_realised_matches_sklearn_and_calibration_slope() -> None:
    rng = np.random.default_rng(5)
    p = rng.beta(2, 5, 20_000)
    y = (rng.random(len(p)) < p).astype(np.int64)
    frame = pl.DataFrame({"probability": p, "label": y})
    r = realised_performance(frame, REALISED, [0.35])[0]
    assert r.auc == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert r.brier == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert r.calibration_slope == pytest.approx(1.0, abs=0.06)
    assert abs(r.calibration_in_the_large or 1.0) < 0.01
    assert r.calibration_ok is True
    flagged = p >= 0.35
    assert r.thresholds[0].fpr == pytest.approx(np.mean(flagged[y == 0]))
    assert r.thresholds[0].fnr == pytest.approx(np.mean(~flagged[y == 1]))
    # over-confident scores: logit doubled, labels still from p
    logit = np.log(p / (1 - p))
    sharp = 1 / (1 + np.exp(-2 * logit))
    fit = calibration_fit(y.astype(float), sharp)
    assert fit is not None and fit[1] == pytest.approx(0.5, abs=0.05)
    over = realised_performance(
        frame.with_columns(pl.Series("probability", sharp)), REALISED, [0.35]
    )
    assert over[0].calibration_ok is False


def test_groups_insufficient_and_bad_input() -> None:
    frame = pl.DataFrame({"probability": [0.1, 0.9, 0.5], "label": [0, 1, 1], "g": ["a", "a", "b"]})
    est = estimate_performance(frame, EstimateSettings(replicates=20, thresholds=[0.35]), ["g"])
    assert [(e.group_column, e.group, e.n, e.sufficient) for e in est] == [
        ("all", "all", 3, False),
        ("g", "a", 2, False),
        ("g", "b", 1, False),
    ]
    real = realised_performance(frame, REALISED, [0.35], ["g"])
    assert real[2].auc is None  # one person, no pair to rank
    with pytest.raises(InputError):
        estimate_performance(frame.with_columns(pl.lit(1.5).alias("probability")), SETTINGS)
    with pytest.raises(InputError):
        realised_performance(frame.with_columns(pl.lit(2).alias("label")), REALISED, [0.35])


def test_calibration_alert_needs_evidence_not_noise() -> None:
    # 40 calibrated groups of 300: the raw slope leaves [0.9, 1.1] often, the alert rarely
    rng = np.random.default_rng(21)
    n, k = 300, 40
    p = rng.beta(2, 5, n * k)
    y = (rng.random(len(p)) < p).astype(np.int64)
    frame = pl.DataFrame(
        {"probability": p, "label": y, "g": np.repeat([f"g{i:02d}" for i in range(k)], n)}
    )
    groups = [
        r for r in realised_performance(frame, REALISED, [0.35], ["g"]) if r.group_column == "g"
    ]
    raw_out = sum(
        not (
            REALISED.calibration_slope_low
            <= (r.calibration_slope or 1.0)
            <= REALISED.calibration_slope_high
        )
        for r in groups
    )
    assert raw_out >= 10
    assert sum(r.calibration_ok is False for r in groups) <= 2
    assert all(r.calibration_slope_se is not None and r.calibration_slope_se > 0.05 for r in groups)


def test_group_figures_equal_the_group_computed_alone() -> None:
    # sums per cell of two group columns, added up per group, give what the subset gives
    rng = np.random.default_rng(31)
    n = 6000
    p = np.round(rng.beta(2, 5, n), 2)  # rounded: many ties, so the tie handling is exercised
    frame = pl.DataFrame(
        {
            "probability": p,
            "label": (rng.random(n) < p).astype(np.int64),
            "sex": rng.choice(["F", "M"], n),
            "region": rng.choice(["N", "S", "E"], n),
        }
    )
    est = {
        (e.group_column, e.group): e
        for e in estimate_performance(frame, SETTINGS, ["sex", "region"])
    }
    real = {
        (r.group_column, r.group): r
        for r in realised_performance(frame, REALISED, SETTINGS.thresholds, ["sex", "region"])
    }
    for column, group in (("sex", "F"), ("region", "S")):
        subset = frame.filter(pl.col(column) == group)
        alone = estimate_performance(subset, SETTINGS)[0]
        together = est[(column, group)]
        assert together.n == subset.height
        assert together.auc.value == pytest.approx(alone.auc.value, abs=1e-12)
        assert together.brier.value == pytest.approx(alone.brier.value, abs=1e-12)
        assert together.thresholds[1].fpr.value == pytest.approx(alone.thresholds[1].fpr.value)
        r = real[(column, group)]
        assert r.auc == pytest.approx(
            roc_auc_score(subset["label"], subset["probability"]), abs=1e-12
        )
