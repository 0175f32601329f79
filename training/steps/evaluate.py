"""Step ``evaluate``: the model, its uncalibrated scores, the baselines and (with a truth) the
oracle on the out-of-time test snapshot, and every scorer on the calibration and test periods."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from training.model import RiskModel, sigmoid
from training.report import MODEL, Evaluation, evaluate, period_metrics
from training.steps.data import TrainingData
from training.steps.fit import Baselines
from training.steps.plan import TrainingPlan
from training.truth import oracle_column

UNCALIBRATED = "model_uncalibrated"


@dataclass(frozen=True)
class Evaluated:
    """The evaluation, and what the report step draws from: the test rows, every scorer's
    probabilities on them and the oracle's p_true (NaN where unknown; None without truth)."""

    evaluation: Evaluation
    test_rows: pl.DataFrame
    scores: dict[str, np.ndarray]
    oracle: np.ndarray | None


def evaluate_models(
    plan: TrainingPlan,
    data: TrainingData,
    model: RiskModel,
    baselines: Baselines,
    p_true: pl.DataFrame | None = None,
) -> Evaluated:
    """Score the test snapshot with every scorer and evaluate (paired bootstrap of AUC
    differences, gap to the oracle); add per-period metrics of calibration and test.
    ``p_true``: the truth's ``person_id, as_of, p_true`` rows, or None."""
    ds, cfg, split = data.dataset, plan.cfg, plan.split
    test_rows = data.rows(split.test)
    scores = {MODEL: model.predict_proba(test_rows)}
    scores[UNCALIBRATED] = sigmoid(model.raw_score(test_rows))
    scores.update({name: b.predict_proba(ds.x(test_rows)) for name, b in baselines.items()})
    oracle = oracle_column(p_true, test_rows)
    evaluation = evaluate(
        ds.y(test_rows),
        scores,
        test_rows["as_of"].to_numpy(),
        n_boot=cfg.evaluation.bootstrap,
        seed=cfg.seed,
        oracle=oracle,
    )
    eval_rows = data.rows([*split.calibrate, *split.test])
    by_period = {MODEL: model.predict_proba(eval_rows)}
    by_period.update({n: b.predict_proba(ds.x(eval_rows)) for n, b in baselines.items()})
    evaluation.by_period.update(
        period_metrics(ds.y(eval_rows), by_period, eval_rows["as_of"].to_numpy())
    )
    return Evaluated(evaluation, test_rows, scores, oracle)
