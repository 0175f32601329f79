"""The monitoring check's pure parts on simulated ground truth: score drift and list
composition, the feedback-loop indicator, decisions and outcomes, breaches and the re-audit
rule, one whole `run_check`, and the store on SQLite."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from fairness.monitoring.alerts import Breach, estimated_breaches, reaudit_due
from fairness.monitoring.check import CheckInputs, figures, run_check
from fairness.monitoring.config import (
    DriftSettings,
    EstimateSettings,
    FeedbackSettings,
    MonitoringConfig,
    OutcomeSettings,
    RealisedSettings,
)
from fairness.monitoring.estimate import estimate_performance
from fairness.monitoring.feedback import feedback_indicator
from fairness.monitoring.outcomes import NOT_CAUSAL, decision_counts, outcome_rates
from fairness.monitoring.scores import list_composition, score_drift
from fairness.monitoring.store import MonitoringStore
from fairness.policy import load_policy
from training.model import Tier

TIERS = [Tier("low", 0.0), Tier("medium", 0.15), Tier("high", 0.35), Tier("very_high", 0.6)]
DRIFT = DriftSettings(seed=3)


def _population(rng: np.random.Generator, n: int, shift_region: str | None = None) -> pl.DataFrame:
    region = rng.choice(["R1", "R2", "R3"], n)
    sex = rng.choice(["F", "M"], n)
    x = rng.normal(0, 1, n)
    if shift_region is not None:
        x = np.where(region == shift_region, x + 1.0, x)
    p = 1 / (1 + np.exp(-(-1.2 + 0.9 * x)))
    return pl.DataFrame({"x": x, "probability": p, "region": region, "sex": sex})


def test_score_drift_sees_the_region_whose_scores_moved() -> None:
    rng = np.random.default_rng(1)
    reference, current = _population(rng, 20_000), _population(rng, 20_000, "R2")
    out = score_drift(reference, current, TIERS, 0.35, DRIFT, ["region", "sex"])
    by = {(s.group_column, s.group): s for s in out}
    r1, r2 = by[("region", "R1")].drift, by[("region", "R2")].drift
    assert r1 is not None and r2 is not None
    assert (r1.status, r2.status) == ("ok", "alert")
    for s in out:
        assert sum(s.tier_shares.values()) == pytest.approx(1.0)
    in_r2 = current.filter(pl.col("region") == "R2")
    assert by[("region", "R2")].mean_probability == pytest.approx(in_r2["probability"].mean())
    assert by[("region", "R2")].listed_share == pytest.approx((in_r2["probability"] >= 0.35).mean())


def test_list_composition_shares_per_unit() -> None:
    frame = pl.DataFrame(
        {
            "probability": [0.9, 0.8, 0.1, 0.7, 0.5],
            "region": ["A", "A", "A", "B", "B"],
            "sex": ["F", "M", "F", "F", "F"],
        }
    )
    comp = {c.unit: c for c in list_composition(frame, 0.35, "region", ["sex"])}
    assert comp["all"].n_listed == 4
    assert comp["A"].shares["sex"] == {"F": 0.5, "M": 0.5}
    assert comp["B"].shares["sex"] == {"F": 1.0}


def _listed_cohort(rng: np.random.Generator, n: int, rise: dict[str, float]) -> pl.DataFrame:
    """Scores p; officers list persons more often at higher p (not only by p); a listed
    person in group g is registered with probability min(1, p * rise[g])."""
    group = rng.choice(list(rise), n)
    p = rng.beta(2, 5, n)
    listed = rng.random(n) < np.clip(p * 1.5, 0, 1)
    factor = np.array([rise[g] for g in group])
    truth = np.where(listed, np.clip(p * factor, 0, 1), p)
    y = (rng.random(n) < truth).astype(np.int64)
    return pl.DataFrame({"probability": p, "listed": listed, "label": y, "grp": group})


def test_feedback_indicator_flags_the_group_whose_listing_raises_labels() -> None:
    rng = np.random.default_rng(7)
    cohort = _listed_cohort(rng, 40_000, {"A": 1.6, "B": 1.0})
    out = {
        (r.group_column, r.group): r
        for r in feedback_indicator(cohort, FeedbackSettings(), ["grp"])
    }
    a, b = out[("grp", "A")], out[("grp", "B")]
    assert a.status == "flag" and a.ratio is not None and 1.4 < a.ratio < 1.8
    assert b.status == "ok" and b.lower is not None and b.upper is not None
    assert b.lower < 1.0 < b.upper
    few = feedback_indicator(cohort.head(100), FeedbackSettings(min_listed=1000), ["grp"])
    assert {r.status for r in few} == {"insufficient_evidence"}


def test_decisions_and_outcomes_by_decision() -> None:
    decisions = pl.DataFrame(
        {
            "person_id": ["1", "2", "3", "4", "1"],
            "officer": ["ana", "ana", "bo", "bo", "ana"],
            "unit": ["R1", "R1", "R2", "R2", "R1"],
            "action": ["no_action", "contacted", "referred", "contacted", "contacted"],
            "override": [False, False, False, True, False],
        }
    )
    counts = decision_counts(decisions)
    overall = {c.action: c.n for c in counts if c.level == "all"}
    assert overall == {"contacted": 3, "no_action": 1, "referred": 1}
    bo = [c for c in counts if c.level == "officer" and c.key == "bo"]
    assert sum(c.overrides for c in bo) == 1
    labels = pl.DataFrame({"person_id": ["1", "2", "3", "4"], "label": [1, 0, 1, 0]})
    rates = outcome_rates(decisions, labels, OutcomeSettings(min_count=1))
    overall_rates = {r.decision: r for r in rates if r.unit == "all"}
    assert overall_rates["contacted"].n == 2  # person 1's last decision, and person 2
    assert overall_rates["contacted"].outcome_rate == 0.5
    assert overall_rates["override"].n == 1  # person 4: an override whatever its action
    hidden = outcome_rates(decisions, labels, OutcomeSettings(min_count=5))
    assert all(r.outcome_rate is None for r in hidden)
    assert "not causal" in NOT_CAUSAL


def test_estimated_disparity_breach_and_two_consecutive_checks() -> None:
    policy = load_policy()
    rng = np.random.default_rng(3)
    n = 20_000
    sex = rng.choice(["F", "M"], n)
    p = np.where(sex == "F", rng.beta(5, 4, n), rng.beta(2, 6, n))  # F scored far higher
    frame = pl.DataFrame({"probability": p, "sex": sex})
    est = estimate_performance(frame, EstimateSettings(replicates=50, thresholds=[0.35]), ["sex"])
    breaches = estimated_breaches(est, policy)
    assert [(b.group_column, b.group) for b in breaches] == [("sex", "F")]
    even = pl.DataFrame({"probability": rng.beta(2, 6, n), "sex": sex})
    settings = EstimateSettings(replicates=50, thresholds=[0.35])
    assert estimated_breaches(estimate_performance(even, settings, ["sex"]), policy) == []
    assert reaudit_due(breaches, None) == []
    assert reaudit_due(breaches, []) == []
    drift_only = [
        Breach(
            kind="input_drift",
            figure="psi:x",
            group_column="all",
            group="all",
            value=0.5,
            threshold=None,
            message="x drifted",
        )
    ]
    assert reaudit_due(breaches, drift_only) == []
    assert len(reaudit_due(breaches, breaches)) == 1


def _config() -> MonitoringConfig:
    return MonitoringConfig(
        config_version="t",
        group_columns=["sex", "region"],
        drift=DRIFT,
        estimate=EstimateSettings(replicates=30),
    )


def _inputs(rng: np.random.Generator, as_of: date, shift: str | None = None) -> CheckInputs:
    reference, current = _population(rng, 5_000), _population(rng, 5_000, shift)
    cohort = _population(rng, 5_000)
    truth = cohort["probability"].to_numpy()
    matured = cohort.with_columns(
        pl.Series("label", (rng.random(5_000) < truth).astype(np.int64)),
        pl.Series("person_id", [str(i) for i in range(5_000)]),
        pl.Series("listed", rng.random(5_000) < 0.3),
    )
    return CheckInputs(
        model="m",
        version="1",
        as_of=as_of,
        checked_at=datetime(2026, 1, 1, tzinfo=UTC),
        reference_note="test snapshot",
        reference=reference,
        current=current,
        inputs=["x"],
        categorical=[],
        tiers=TIERS,
        matured=matured,
        matured_as_of=date(2024, 12, 31),
    )


def test_run_check_and_the_store_keep_a_time_series(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    policy = load_policy()
    quiet = run_check(_inputs(rng, date(2025, 3, 31)), _config(), policy)
    assert quiet.thresholds == [0.15, 0.35, 0.6]  # the tiers', with the policy's 0.35
    assert quiet.matured is not None and quiet.matured.realised
    assert not [b for b in quiet.breaches if b.kind in ("input_drift", "score_drift")]
    drifted = run_check(_inputs(rng, date(2025, 6, 30), "R2"), _config(), policy)
    kinds = {(b.kind, b.group) for b in drifted.breaches}
    assert ("input_drift", "R2") in kinds and ("score_drift", "R2") in kinds
    names = {f.name for f in figures(drifted)}
    assert {"input_psi", "estimated_auc", "tier_share", "realised_auc", "breaches"} <= names

    store = MonitoringStore(f"sqlite:///{tmp_path / 'm.sqlite'}")
    first, second = store.record(quiet), store.record(drifted)
    assert [c.id for c in store.checks("m")] == [first.id, second.id]
    assert [c.id for c in store.checks("m", since=date(2025, 4, 1))] == [second.id]
    latest = store.latest("m")
    assert latest is not None and latest.result == drifted
    prev = store.before("m", date(2025, 6, 30))
    assert prev is not None and prev.id == first.id
    series = store.series("m", "breaches")
    drift_points = [pt.value for pt in series if pt.labels == {"kind": "input_drift"}]
    assert drift_points[0] == 0 and drift_points[1] > 0
    assert store.checks("other") == []


def test_the_materialize_hook_is_silent_without_a_champion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fairness.monitoring.cli import monitor_after_materialize
    from riskcast.settings import get_settings

    monkeypatch.setenv("RISKCAST_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    get_settings.cache_clear()
    try:
        monitor_after_materialize()(date(2025, 3, 31))
    finally:
        get_settings.cache_clear()
    assert list(tmp_path.iterdir()) == []  # no registry opened, no store created


def _floor_forecast(rng: np.random.Generator, n: int, floor: float) -> pl.DataFrame:
    """Cell-week expected counts: 70 % quiet cells share one floor forecast (a point mass),
    the rest a spread of expected counts."""
    region = rng.choice(["A", "B", "C"], n)
    quiet = rng.random(n) < 0.7
    busy = rng.gamma(2.0, 0.05, n) + 0.002
    return pl.DataFrame({"expected_count": np.where(quiet, floor, busy), "region": region})


def test_a_floor_forecast_moving_slightly_keeps_its_psi_bin() -> None:
    # the manual places run's case (bench_monitoring.md §5): the quiet cells' floor fell from
    # 0.00123 to 0.00111 and PSI on the raw quantile edges read 1.5-16.5; the mass keeps its
    # bin in `input_drift` now, overall and per group
    from fairness.monitoring.drift import bin_codes, input_drift, psi_from_counts

    rng = np.random.default_rng(12)
    reference = _floor_forecast(rng, 6_000, 0.00123)
    current = _floor_forecast(rng, 6_000, 0.00111)
    drift = input_drift(reference, current, ["expected_count"], DRIFT, ["region"])
    psi = [d.psi for d in drift.results if d.psi is not None]
    assert len(psi) == 4 and max(psi) < 0.1
    assert not [d for d in drift.results if d.status == "alert"]
    # the same data on the raw quantile edges (the mass on an edge) reads a major shift
    r, c = (f["expected_count"].to_numpy() for f in (reference, current))
    raw = np.unique(np.quantile(r, np.linspace(0, 1, 11)[1:-1]))
    counts = [
        np.bincount(bin_codes(x, raw), minlength=len(raw) + 1).astype(np.float64) for x in (r, c)
    ]
    assert float(psi_from_counts(counts[0], counts[1], DRIFT.epsilon)[0]) > 5


def test_realised_fnr_gap_is_judged_as_an_advisory_not_a_breach() -> None:
    from fairness.monitoring.alerts import realised_advisories, realised_breaches
    from fairness.monitoring.realised import realised_performance

    policy = load_policy()
    fnr = policy.tolerance("fnr")
    assert fnr is not None and not fnr.binding and fnr.max_difference is not None
    rng = np.random.default_rng(21)
    n = 8_000
    sex = np.repeat(["M", "F"], n // 2)
    p = rng.uniform(0.05, 0.6, n)
    # women's positives sit below the threshold more often: FNR up, FPR unchanged
    truth = np.where(sex == "F", np.where(p < policy.threshold, p * 1.8, p * 0.5), p)
    frame = pl.DataFrame(
        {"probability": p, "label": (rng.random(n) < truth).astype(np.int64), "sex": sex}
    )
    realised = realised_performance(frame, RealisedSettings(), [policy.threshold], ["sex"])
    advisories = realised_advisories(realised, policy)
    assert [(a.kind, a.figure, a.group) for a in advisories] == [
        ("advisory_disparity", f"fnr@{policy.threshold:g}", "F")
    ]
    assert advisories[0].value is not None and advisories[0].value > fnr.max_difference
    assert not any(b.figure.startswith("fnr") for b in realised_breaches(realised, policy))
    even = frame.with_columns(
        pl.Series("label", (rng.random(n) < p).astype(np.int64)),
    )
    realised_even = realised_performance(even, RealisedSettings(), [policy.threshold], ["sex"])
    assert realised_advisories(realised_even, policy) == []
