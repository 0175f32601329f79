"""The policy file and the gate: a fair model passes, a biased one is refused, with reasons."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from fairness.gate import FAIL, NO_EVIDENCE, PASS, decide
from fairness.policy import FairnessPolicy, group_columns, load_policy
from fairness.results import AuditResult, GateCheck, GateDecision, MitigationSummary
from fairness.tableaudit import audit_frame
from riskcast.errors import ConfigError


@pytest.fixture(scope="module")
def policy() -> FairnessPolicy:
    return load_policy()


def test_policy_loads_and_refuses_unknown_keys(policy: FairnessPolicy, tmp_path: Path) -> None:
    assert policy.policy_version and "over-surveillance" in policy.rationale
    assert [p.name for p in policy.protected] == [
        "sex", "ethnicity", "age_band", "region", "settlement",
    ]  # fmt: skip
    assert any(m.binding for m in policy.metrics)
    bad = tmp_path / "fairness.yaml"
    bad.write_text(Path("configs/fairness.yaml").read_text() + "surprise: 1\n")
    with pytest.raises(ConfigError, match="surprise"):
        load_policy(bad)


def test_group_columns_band_age_and_join_intersections(policy: FairnessPolicy) -> None:
    frame = pl.DataFrame(
        {
            "sex": ["M", "F", None],
            "ethnicity": ["E1", "E2", "E3"],
            "age_at": [17, 30, 61],
            "region": ["AST", "KAR", "ALA"],
            "settlement": ["urban", "rural", "urban"],
        }
    )
    g = group_columns(frame, policy)
    assert g["age_band"].to_list() == ["<18", "25-34", "50+"]
    assert g["sex"].to_list() == ["M", "F", "(missing)"]
    assert g["ethnicity × region"].to_list() == ["E1 × AST", "E2 × KAR", "E3 × ALA"]


def _synthetic(bias: float, seed: int = 0, n: int = 4000) -> pl.DataFrame:
    """Two groups with the same risk distribution; ``bias`` inflates group B's scores."""
    rng = np.random.default_rng(seed)
    group = np.where(rng.random(n) < 0.5, "A", "B")
    p = rng.beta(2, 5, n)
    y = (rng.random(n) < p).astype(int)
    score = np.clip(p + np.where(group == "B", bias, 0.0), 0, 1)
    return pl.DataFrame({"group": group, "y": y, "score": score})


def _audit(frame: pl.DataFrame, policy: FairnessPolicy) -> AuditResult:
    return audit_frame(
        frame, label="y", score="score", protected=["group"], threshold=0.35,
        references={"group": "A"}, min_group_size=policy.min_group_size, n_boot=100,
    )  # fmt: skip


def test_gate_passes_a_fair_model_and_refuses_a_biased_one(policy: FairnessPolicy) -> None:
    fair = _audit(_synthetic(0.0), policy)
    decision = decide(fair, None, policy)
    assert decision.outcome == PASS, decision.reasons

    biased = _audit(_synthetic(0.15), policy)
    refused = decide(biased, None, policy)
    assert refused.outcome == FAIL
    failed = [r for r in refused.reasons if r.startswith("FAIL")]
    assert any("fpr disparity by group" in r for r in failed)
    assert any("calibration_gap disparity by group" in r for r in failed)

    # against a fair champion, the biased candidate's disparity growth is named too
    versus = decide(biased, fair, policy)
    assert any(r.startswith("FAIL: disparities vs champion") for r in versus.reasons)


def test_gate_refuses_an_auc_drop_and_reports_insufficient_evidence(
    policy: FairnessPolicy,
) -> None:
    champion = _audit(_synthetic(0.0), policy)
    noisy = _synthetic(0.0).with_columns(
        score=pl.Series(np.random.default_rng(5).random(4000) * 0.6)
    )
    worse = decide(_audit(noisy, policy), champion, policy)
    assert worse.outcome == FAIL
    assert any(r.startswith("FAIL: AUC vs champion") for r in worse.reasons)

    small = _synthetic(0.0, n=4000).with_columns(
        group=pl.when(pl.int_range(pl.len()) < 20).then(pl.lit("C")).otherwise(pl.col("group"))
    )
    unsure = decide(_audit(small, policy), None, policy)
    assert unsure.outcome == NO_EVIDENCE
    assert any("C (n=20)" in r for r in unsure.reasons)


def _rare(
    b_a: float, b_b: float, n_b: int, cap_b: float | None = None, n_a: int = 5_000
) -> pl.DataFrame:
    """Calibrated scores (``score`` = the true risk) with rare flags at the 0.35 threshold:
    risks ~ Beta(1, b); ``cap_b`` keeps every B score below the threshold (B: no flags)."""
    rng = np.random.default_rng(0)
    p_a, p_b = rng.beta(1, b_a, n_a), rng.beta(1, b_b, n_b)
    if cap_b is not None:
        p_b = np.minimum(p_b, cap_b)
    p = np.concatenate([p_a, p_b])
    y = (rng.random(p.size) < p).astype(int)
    return pl.DataFrame({"group": ["A"] * n_a + ["B"] * n_b, "y": y, "score": p})


def _checks(decision: GateDecision) -> dict[str, GateCheck]:
    return {c.name: c for c in decision.checks}


FPR_CHECK = "fpr disparity by group vs A"


def test_a_group_without_events_against_a_rare_rate_passes(policy: FairnessPolicy) -> None:
    """B (600 people) has no flagged negatives, A an FPR of about 0.001. The bootstrap gave
    B's FPR the interval [0, 0], so the ratio read "0.00 [0.00, 0.00]" and the gate refused
    a difference of -0.001 (whose bootstrap interval excluded 0 too, so the difference rule
    alone would not have helped). B's FPR now has its exact interval, [0, 0.006]."""
    audit = _audit(_rare(15, 15, 600, cap_b=0.3, n_a=12_000), policy)
    decision = decide(audit, None, policy)
    assert decision.outcome == PASS, decision.reasons
    assert _checks(decision)[FPR_CHECK].outcome == PASS
    rows = {r.group: r for r in audit.attributes[0].groups}
    fpr_a, fpr_b = (rows[g].points["threshold"]["fpr"] for g in "AB")
    assert fpr_a.value is not None and fpr_a.low is not None
    assert 0 < fpr_a.value < 0.002 and fpr_a.low > 0
    assert (fpr_b.value, fpr_b.low) == (0.0, 0.0)
    positives_b = rows["B"].positives
    assert positives_b is not None
    assert fpr_b.high == pytest.approx(1 - 0.025 ** (1 / (600 - positives_b)))


def test_rare_rates_still_fail_when_the_evidence_shows_a_disparity(
    policy: FairnessPolicy,
) -> None:
    """Differences below 0.05 that the ratio rule must still catch: B's FPR about 9 times
    A's (0.020 vs 0.002), and B without flagged negatives (of ~1,800) against A's 0.022."""
    higher = decide(_audit(_rare(15, 8, 2000), policy), None, policy)
    assert higher.outcome == FAIL
    detail = _checks(higher)[FPR_CHECK].detail
    assert detail.startswith("B: ratio ") and "difference +0.0" in detail, detail

    none = decide(_audit(_rare(8, 8, 2000, cap_b=0.3), policy), None, policy)
    assert none.outcome == FAIL
    detail = _checks(none)[FPR_CHECK].detail
    assert detail.startswith("B: ratio 0.00 [0.00, 0.1") and "difference -0.02" in detail, detail


def _one_disparity(
    difference: tuple[float, float, float], ratio: tuple[float, float, float]
) -> AuditResult:
    """A hand-made audit: one attribute, groups A (reference) and B, one FPR disparity."""
    est = {"value": 0.1, "low": 0.05, "high": 0.15}
    group = {"n": 500, "status": "ok", "overall": {}, "points": {"threshold": {"fpr": est}}}
    return AuditResult.model_validate({
        "overall": {"ece": 0.01},
        "attributes": [
            {
                "attribute": "group",
                "reference": "A",
                "groups": [group | {"group": "A"}, group | {"group": "B"}],
                "disparities": [
                    {
                        "group": "B", "point": "threshold", "metric": "fpr", "status": "ok",
                        "difference": dict(zip(("value", "low", "high"), difference, strict=True)),
                        "ratio": dict(zip(("value", "low", "high"), ratio, strict=True)),
                    }
                ],
            }
        ],
    })  # fmt: skip


def test_a_ratio_beyond_the_tolerance_needs_a_difference_that_excludes_zero(
    policy: FairnessPolicy,
) -> None:
    ratio = (3.0, 1.4, 9.0)  # wholly beyond 1.25
    unsure = decide(_one_disparity((0.002, -0.0002, 0.004), ratio), None, policy)
    check = _checks(unsure)["fpr disparity by group vs A"]
    assert (unsure.outcome, check.outcome) == (PASS, PASS), unsure.reasons
    assert "not taken as evidence: the difference +0.002 [-0.000, +0.004] includes 0" in (
        check.detail
    )
    shown = decide(_one_disparity((0.002, 0.001, 0.004), ratio), None, policy)
    check = _checks(shown)["fpr disparity by group vs A"]
    assert (shown.outcome, check.outcome) == (FAIL, FAIL)
    assert check.detail == (
        "B: ratio 3.00 [1.40, 9.00] beyond [0.80, 1.25], difference +0.002 [+0.001, +0.004]"
    )
    # a difference beyond its tolerance fails whatever the ratio says
    wide = decide(_one_disparity((0.08, 0.06, 0.1), (1.5, 0.9, 2.0)), None, policy)
    assert _checks(wide)["fpr disparity by group vs A"].detail.startswith("B: difference +0.080")


def _entry(seq: int, kind: str, version: str, decision: str):
    from datetime import UTC, datetime

    from fairness.ledger import LedgerEntry

    return LedgerEntry(
        seq=seq, at=datetime.now(UTC), kind=kind, actor="a", role="auditor", version=version,
        decision=decision, reasons=[], report_sha256=None, data_digests={},
        prev_hash="0" * 64, hash=f"{seq:064x}",
    )  # fmt: skip


def test_champion_history_follows_promotions_overrides_and_rollbacks() -> None:
    from fairness.promotion import champion_history

    entries = [
        _entry(1, "audit", "1", "pass"),
        _entry(2, "promotion", "1", "promoted"),
        _entry(3, "refusal", "2", "fail"),
        _entry(4, "override", "2", "overridden"),
        _entry(5, "promotion", "3", "promoted"),
    ]
    assert champion_history(entries) == ["1", "2", "3"]
    assert champion_history([*entries, _entry(6, "rollback", "2", "rolled back")]) == ["1", "2"]


def test_override_needs_the_auditor_role_and_a_reason() -> None:
    from fairness.promotion import check_override
    from riskcast.errors import InputError

    with pytest.raises(InputError, match="auditor"):
        check_override("data_scientist", "a long enough reason")
    with pytest.raises(InputError, match="reason"):
        check_override("auditor", "ok")
    check_override("auditor", "reviewed the small groups by hand")


def test_mitigation_what_if_equalises_fpr_and_states_its_cost() -> None:
    from fairness.mitigation import what_if_result

    frame = _synthetic(0.15)
    y = frame["y"].cast(pl.Float64).to_numpy()
    out = what_if_result(y, frame["score"].to_numpy(), frame["group"].to_numpy(), 0.35, "A")
    assert "protected attribute at scoring time" in out.statement
    before, after = _fprs(out.before), _fprs(out.group_thresholds)
    assert before["B"] - before["A"] > 0.2
    assert abs(after["B"] - after["A"]) < 0.02
    assert isinstance(out.threshold_optimizer.accuracy_cost, float)


def _fprs(summary: MitigationSummary) -> dict[str, float]:
    """Each group's FPR in ``summary`` (all defined in these synthetic groups)."""
    out = {g: r.fpr for g, r in summary.groups.items()}
    assert None not in out.values(), out
    return {g: float(v) for g, v in out.items() if v is not None}
