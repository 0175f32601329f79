"""The policy file and the gate: a fair model passes, a biased one is refused, with reasons."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from fairness.gate import FAIL, NO_EVIDENCE, PASS, decide
from fairness.policy import FairnessPolicy, group_columns, load_policy
from fairness.tableaudit import audit_frame
from features.errors import ConfigError


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


def _audit(frame: pl.DataFrame, policy: FairnessPolicy) -> dict[str, Any]:
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
    from features.errors import InputError

    with pytest.raises(InputError, match="auditor"):
        check_override("data_scientist", "a long enough reason")
    with pytest.raises(InputError, match="reason"):
        check_override("auditor", "ok")
    check_override("auditor", "reviewed the small groups by hand")


def test_mitigation_what_if_equalises_fpr_and_states_its_cost() -> None:
    from fairness.mitigation import what_if

    frame = _synthetic(0.15)
    y = frame["y"].cast(pl.Float64).to_numpy()
    out = what_if(y, frame["score"].to_numpy(), frame["group"].to_numpy(), 0.35, "A")
    assert "protected attribute at scoring time" in out["statement"]
    before, after = out["before"]["groups"], out["group_thresholds"]["groups"]
    assert before["B"]["fpr"] - before["A"]["fpr"] > 0.2
    assert abs(after["B"]["fpr"] - after["A"]["fpr"]) < 0.02
    assert "accuracy_cost" in out["threshold_optimizer"]
