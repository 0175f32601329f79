"""fairness.audit.label_bias: recorded vs true error rates per group, hand-computed; groups
below the minimum size are reported as insufficient evidence, never dropped."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from fairness.audit import label_bias
from fairness.policy import FairnessPolicy, ProtectedAttribute, load_policy


def _policy(min_group_size: int) -> FairnessPolicy:
    return load_policy().model_copy(
        update={
            "protected": [ProtectedAttribute(name="grp", column="grp")],
            "intersections": [],
            "min_group_size": min_group_size,
        }
    )


def test_rates_against_records_and_truth_and_small_groups_kept() -> None:
    policy = _policy(min_group_size=4)
    threshold = policy.threshold
    hi, lo = threshold + 0.1, threshold - 0.1
    # group A: 4 persons; flagged: 1st and 2nd; recorded labels 1,0,0,1; truth 0.5 each
    # group B: 2 persons (below the minimum)
    frame = pl.DataFrame({"grp": ["A", "A", "A", "A", "B", "B"]})
    p = np.array([hi, hi, lo, lo, hi, lo])
    y = np.array([1, 0, 0, 1, 1, 0])
    p_true = np.array([0.5, 0.5, 0.5, 0.5, 0.9, 0.1])
    rows = {r.group: r for r in label_bias(p_true, y, p, frame, policy)}
    assert set(rows) == {"A", "B"}
    a = rows["A"]
    assert a.status == "ok" and a.n == 4
    assert a.recorded_rate == pytest.approx(0.5)
    assert a.fpr_recorded == pytest.approx(0.5)  # negatives: 2nd (flagged), 3rd
    assert a.fnr_recorded == pytest.approx(0.5)  # positives: 1st (flagged), 4th
    # expected with soft labels: FPR = sum(f * (1 - t)) / sum(1 - t) = 1.0 / 2.0
    assert a.fpr_true == pytest.approx(0.5) and a.fnr_true == pytest.approx(0.5)
    b = rows["B"]
    assert b.status == "insufficient_evidence" and b.n == 2
    assert b.fpr_recorded is None and "minimum group size 4" in (b.reason or "")
