"""fairness.audit.proxy_check on tiny hand-made frames: small groups are insufficient evidence
(named, with the reason), never a crash of the audit and never silently dropped.

The two frames that crashed the old check (a first-half / second-half split of the shuffled
rows): a group seen only in the held-out half (sklearn: "'y_true' contains labels not in
parameter 'labels'") and a training half with one group only (LogisticRegression: "needs
samples of at least 2 classes"). Which seed puts the one-row group in the held-out half is the
shuffle's business, so every frame is checked under ten seeds.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from fairness.audit import proxy_check
from fairness.policy import FairnessPolicy, ProtectedAttribute, load_policy
from fairness.results import INSUFFICIENT, OK, ProxyCheck

SEEDS = range(10)
FEATURES = ["f1", "f2"]


def _policy(min_group_size: int) -> FairnessPolicy:
    """The shipped policy with one protected attribute ``grp`` and the given minimum size."""
    return load_policy().model_copy(
        update={
            "protected": [ProtectedAttribute(name="grp", column="grp")],
            "intersections": [],
            "min_group_size": min_group_size,
        }
    )


def _frame(groups: list[str], seed: int = 0, signal: float = 0.0) -> pl.DataFrame:
    """Two numeric inputs; ``f1`` carries ``signal`` times the group's index when asked."""
    rng = np.random.default_rng(seed)
    names = sorted(set(groups))
    code = np.array([names.index(g) for g in groups], dtype=np.float64)
    return pl.DataFrame(
        {
            "grp": groups,
            "f1": rng.normal(size=len(groups)) + signal * code,
            "f2": rng.normal(size=len(groups)),
        }
    )


def _only(out: list[ProxyCheck]) -> ProxyCheck:
    assert [r.attribute for r in out] == ["grp"]
    return out[0]


@pytest.mark.parametrize("seed", SEEDS)
def test_group_only_in_the_held_out_half_does_not_crash(seed: int) -> None:
    """Three groups of 15 and one row of D: the old check crashed when D fell in the second
    half; now D is named as below the minimum and the AUC is over A, B and C."""
    groups = ["A"] * 15 + ["B"] * 15 + ["C"] * 15 + ["D"]
    rec = _only(proxy_check(_frame(groups, seed), FEATURES, _policy(10), seed=seed))
    assert rec.status == OK, rec
    assert rec.auc is not None and 0.0 <= rec.auc <= 1.0
    assert "D (n=1)" in rec.reason and "minimum size 10" in rec.reason
    assert len(rec.strongest) == 2


@pytest.mark.parametrize("seed", SEEDS)
def test_one_group_in_the_training_half_is_insufficient_evidence(seed: int) -> None:
    """44 rows of A and one of B: the old check crashed when B fell in the second half (one
    class to train on); now the attribute is insufficient evidence, with the reason."""
    groups = ["A"] * 44 + ["B"]
    rec = _only(proxy_check(_frame(groups, seed), FEATURES, _policy(10), seed=seed))
    assert rec.status == INSUFFICIENT, rec
    assert rec.auc is None and rec.strongest == []
    assert "fewer than two groups" in rec.reason
    assert "A (n=44)" in rec.reason and "B (n=1)" in rec.reason


def test_groups_below_the_policy_minimum_are_insufficient_evidence() -> None:
    """A 49-row frame (what the 1,500-person home's test snapshot holds) under the shipped
    minimum of 50: every attribute is insufficient evidence, none is dropped."""
    policy = load_policy()
    rng = np.random.default_rng(3)
    n = 49
    frame = pl.DataFrame(
        {
            "sex": rng.choice(["F", "M"], n),
            "ethnicity": rng.choice(["E1", "E2", "E3"], n),
            "age_at": rng.integers(16, 70, n),
            "region": rng.choice(["AST", "SHY", "KAR", "ALA"], n),
            "settlement": ["urban"] * (n - 1) + ["rural"],
            "f1": rng.normal(size=n),
            "f2": rng.normal(size=n),
        }
    )
    out = proxy_check(frame, FEATURES, policy)
    assert [r.attribute for r in out] == [p.name for p in policy.protected]
    for rec in out:
        assert rec.status == INSUFFICIENT and rec.auc is None, rec
        assert "minimum size 50" in rec.reason
    # every record has the same keys (the report renders them as one table)
    assert len({tuple(r.model_dump()) for r in out}) == 1


def test_the_split_keeps_every_group_in_both_halves() -> None:
    """Groups of exactly the minimum size, sorted so a first-half split would miss the last
    one: the stratified split trains and scores on all of them, and finds the proxy."""
    groups = ["A"] * 30 + ["B"] * 30 + ["C"] * 6
    frame = _frame(groups, signal=4.0)
    for seed in SEEDS:
        rec = _only(proxy_check(frame, FEATURES, _policy(6), seed=seed))
        assert rec.status == OK and rec.reason == "", rec
        assert rec.auc is not None and rec.auc > 0.9 and rec.strongest[0] == "f1", rec


def test_a_protected_column_used_as_input_is_its_own_proxy() -> None:
    frame = _frame(["A"] * 5 + ["B"] * 5).with_columns(
        grp=pl.Series([0] * 5 + [1] * 5)  # numeric, so it could be a model input
    )
    rec = _only(proxy_check(frame, [*FEATURES, "grp"], _policy(50)))
    assert (rec.status, rec.auc, rec.strongest) == (OK, 1.0, ["grp"])
