"""The reference's calibration error near the thresholds (fairness.monitoring.bias) and the
estimate's interval once it carries it: simulated champions whose scores over-state the risk
of persons above the threshold, a labelled reference and later cohorts drawn from the same
process (never the cohort estimated)."""

from __future__ import annotations

import numpy as np
import polars as pl

from fairness.monitoring.bias import reference_bias
from fairness.monitoring.config import EstimateSettings, RealisedSettings
from fairness.monitoring.estimate import estimate_performance
from fairness.monitoring.realised import compare, realised_performance

GROUPS = {"A": (2.0, 5.0), "B": (1.5, 6.0), "C": (3.0, 4.0), "D": (2.0, 8.0)}
SETTINGS = EstimateSettings(replicates=100, seed=11, thresholds=[0.15, 0.35, 0.6])
REALISED = RealisedSettings()


def _period(rng: np.random.Generator, n: int, overstated: float) -> pl.DataFrame:
    """``n`` persons per group; above a score of 0.3 the true risk is the score less
    ``overstated`` (twice that in group D): more negatives flagged than the scores say, while
    the calibration in the large barely moves."""
    parts = []
    for group, (a, b) in GROUPS.items():
        p = rng.beta(a, b, n)
        cut = overstated * (2 if group == "D" else 1)
        truth = np.where(p >= 0.3, np.clip(p - cut, 0, 1), p)
        y = (rng.random(n) < truth).astype(np.int64)
        parts.append(pl.DataFrame({"probability": p, "label": y, "grp": [group] * n}))
    return pl.concat(parts)


def _fpr_coverage(
    periods: int,
    n: int,
    corrected: bool,
    overstated: float,
    metric: str = "fpr@0.35",
    settings: EstimateSettings = SETTINGS,
) -> dict[str, float]:
    rng = np.random.default_rng(7)
    reference = _period(rng, n, overstated)
    inside: dict[str, list[bool]] = {g: [] for g in GROUPS}
    for _ in range(periods):
        cohort = _period(rng, n, overstated)
        est = estimate_performance(
            cohort.drop("label"), settings, ["grp"], reference=reference if corrected else None
        )
        real = realised_performance(cohort, REALISED, SETTINGS.thresholds, ["grp"])
        for check in compare(est, real, REALISED):
            if check.group_column == "grp":
                m = {x.metric: x for x in check.metrics}
                inside[check.group].append(bool(m[metric].within_interval))
    return {g: float(np.mean(v)) for g, v in inside.items()}


def test_reference_correction_restores_fpr_coverage_of_a_miscalibrated_champion() -> None:
    plain = _fpr_coverage(periods=25, n=3000, corrected=False, overstated=0.04)
    fixed = _fpr_coverage(periods=25, n=3000, corrected=True, overstated=0.04)
    assert np.mean(list(plain.values())) < 0.6  # label noise alone misses the bias
    assert plain["D"] < 0.2
    assert np.mean(list(fixed.values())) >= 0.9
    assert min(fixed.values()) >= 0.8
    auc_plain = _fpr_coverage(25, 3000, corrected=False, overstated=0.04, metric="auc")
    with_auc = SETTINGS.model_copy(update={"auc_correction": "shift"})
    auc_off = _fpr_coverage(25, 3000, corrected=True, overstated=0.04, metric="auc")
    assert auc_off == auc_plain  # auc_correction is none by default: the AUC is left alone
    auc_fixed = _fpr_coverage(25, 3000, True, 0.04, metric="auc", settings=with_auc)
    assert auc_plain["D"] < 0.5  # the scores over-separate in D: the AUC realised is lower
    assert auc_fixed["D"] >= 0.7  # measured 0.80; all groups 0.90 (of 25 cells each)
    assert np.mean(list(auc_fixed.values())) >= 0.85


def test_correction_is_near_zero_and_keeps_coverage_on_a_calibrated_champion() -> None:
    fixed = _fpr_coverage(periods=25, n=3000, corrected=True, overstated=0.0)
    assert np.mean(list(fixed.values())) >= 0.9
    rng = np.random.default_rng(3)
    bias = reference_bias(_period(rng, 3000, 0.0), [0.35], ["grp"], 50)
    for group in GROUPS:
        s = bias.of("grp", group)
        assert abs(s.fpr[0]) <= 3.5 * s.fpr_se[0], group
        assert abs(s.fnr[0]) <= 3.5 * s.fnr_se[0], group


def test_delta_method_standard_error_matches_a_bootstrap() -> None:
    rng = np.random.default_rng(5)
    frame = _period(rng, 2000, 0.04).filter(pl.col("grp") == "C")
    analytic = reference_bias(frame, [0.35], [], 50).of("all", "all")
    p = frame["probability"].to_numpy()
    y = frame["label"].to_numpy().astype(float)
    boot = []
    for _ in range(400):
        i = rng.integers(0, len(p), len(p))
        f = p[i] >= 0.35
        boot.append(
            np.sum((1 - y[i]) * f) / np.sum(1 - y[i]) - np.sum((1 - p[i]) * f) / np.sum(1 - p[i])
        )
    assert abs(analytic.fpr_se[0] / np.std(boot) - 1) < 0.15
    realised = np.sum((1 - y) * (p >= 0.35)) / np.sum(1 - y)
    label_free = np.sum((1 - p) * (p >= 0.35)) / np.sum(1 - p)
    assert np.isclose(analytic.fpr[0], realised - label_free)
    from sklearn.metrics import roc_auc_score

    from fairness.monitoring.estimate import estimate_performance as estimate

    settings = EstimateSettings(replicates=20, thresholds=[0.35])
    label_free_auc = estimate(frame.drop("label"), settings)[0].auc.value
    assert label_free_auc is not None
    assert np.isclose(analytic.auc, roc_auc_score(y, p) - label_free_auc)
    assert 0.005 < analytic.auc_se < 0.05


def test_group_missing_from_the_reference_takes_the_widened_overall_shift() -> None:
    rng = np.random.default_rng(9)
    reference = _period(rng, 2000, 0.04)
    small = reference.filter(pl.col("grp") != "D").vstack(
        reference.filter(pl.col("grp") == "D").head(20)
    )
    bias = reference_bias(small, [0.35], ["grp"], 50)
    overall = bias.of("all", "all")
    for s in (bias.of("grp", "D"), bias.of("grp", "E")):
        assert s.fpr[0] == overall.fpr[0]
        assert np.isclose(s.fpr_se[0], np.hypot(overall.fpr_se[0], overall.fpr[0]))
    assert bias.of("grp", "A").fpr_se[0] != bias.of("grp", "D").fpr_se[0]
