"""Mitigation "what if" (off by default): group-specific thresholds and Fairlearn's
`ThresholdOptimizer`, evaluated on the audited rows with their accuracy cost.

Both need the protected attribute **at scoring time** (a different threshold per group), which
riskcast's design does not allow in production: this is an analysis for auditors, not a mode
of the service. The numbers are in-sample (fitted and evaluated on the same rows), so they are
optimistic.

`what_if_result` gives the typed `fairness.results.MitigationWhatIf`; callers that write it out
dump it (``model_dump(mode="json")``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, ClassifierMixin

from fairness.metrics import num, rates
from fairness.results import (
    GroupRates,
    GroupThresholdsSummary,
    MitigationSummary,
    MitigationWhatIf,
    OptimizerSummary,
)

STATEMENT = (
    "Mitigation needs the protected attribute at scoring time (one threshold per group); "
    "riskcast never uses protected attributes when scoring, so this is a what-if for "
    "auditors only. Figures are in-sample."
)


class _ScoreAsPrediction(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A prefit 'estimator' whose prediction is the score itself (column 0)."""

    def fit(self, x: Any, y: Any) -> _ScoreAsPrediction:
        self.classes_ = np.array([0, 1])
        return self

    def predict(self, x: Any) -> NDArray[np.float64]:
        return np.asarray(x, dtype=np.float64)[:, 0]


def _summary(
    y: NDArray[np.float64], flags: NDArray[np.float64], groups: NDArray[Any]
) -> MitigationSummary:
    per_group: dict[str, GroupRates] = {}
    for g in sorted(set(groups.tolist())):
        m = groups == g
        r = rates(y[m], flags[m])
        per_group[str(g)] = GroupRates.model_validate({k: num(float(v)) for k, v in r.items()})
    return MitigationSummary(
        accuracy=float(np.mean(flags == y)), selection_rate=float(flags.mean()), groups=per_group
    )


def group_thresholds_for_fpr(
    y: NDArray[np.float64], score: NDArray[np.float64], groups: NDArray[Any],
    threshold: float, reference: str,
) -> dict[str, float]:  # fmt: skip
    """Per group, the threshold whose FPR matches the reference group's FPR at ``threshold``."""
    ref_neg = score[(groups == reference) & (y == 0)]
    target = float(np.mean(ref_neg >= threshold)) if ref_neg.size else 0.0
    out: dict[str, float] = {}
    for g in sorted(set(groups.tolist())):
        neg = np.sort(score[(groups == g) & (y == 0)])
        if neg.size == 0:
            out[str(g)] = threshold
            continue
        k = round(target * neg.size)  # flag the k highest-scoring negatives
        out[str(g)] = float(neg[neg.size - k]) if k > 0 else float(neg[-1]) + 1e-9
    return out


def what_if_result(
    y: NDArray[np.float64], score: NDArray[np.float64], groups: NDArray[Any],
    threshold: float, reference: str, seed: int = 0,
) -> MitigationWhatIf:  # fmt: skip
    """Before, with FPR-matching group thresholds, and with `ThresholdOptimizer`
    (FPR parity, accuracy objective): accuracy, selection rate and per-group rates."""
    from fairlearn.postprocessing import ThresholdOptimizer

    before = (score >= threshold).astype(np.float64)
    cuts = group_thresholds_for_fpr(y, score, groups, threshold, reference)
    per_group = np.array([cuts[str(g)] for g in groups])
    grouped = (score >= per_group).astype(np.float64)
    x = score[:, None]
    opt = ThresholdOptimizer(
        estimator=_ScoreAsPrediction().fit(x, y),
        constraints="false_positive_rate_parity",
        objective="accuracy_score",
        prefit=True,
        predict_method="predict",
    )
    opt.fit(x, y.astype(int), sensitive_features=groups)
    optimised = np.asarray(
        opt.predict(x, sensitive_features=groups, random_state=seed), dtype=np.float64
    )
    base = _summary(y, before, groups)
    by_group = _summary(y, grouped, groups)
    optimal = _summary(y, optimised, groups)
    return MitigationWhatIf(
        statement=STATEMENT,
        reference=reference,
        before=base,
        group_thresholds=GroupThresholdsSummary(
            accuracy=by_group.accuracy,
            selection_rate=by_group.selection_rate,
            groups=by_group.groups,
            accuracy_cost=base.accuracy - by_group.accuracy,
            thresholds=cuts,
        ),
        threshold_optimizer=OptimizerSummary(
            accuracy=optimal.accuracy,
            selection_rate=optimal.selection_rate,
            groups=optimal.groups,
            accuracy_cost=base.accuracy - optimal.accuracy,
            constraint="false_positive_rate_parity",
        ),
    )
