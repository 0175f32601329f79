"""Step ``report``: everything a run logs (params, tags, metrics, figures, JSON artifacts and
the model card) as one `training.tracking.RunRecord`, built without writing anything."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from features.frames.scope import PopulationScope
from training.dataset import dataset_digest
from training.evaluation import plot_calibration, plot_capture, plot_roc
from training.report import (
    domain_importance,
    model_card,
    plot_domain_importance,
    plot_shap_beeswarm,
)
from training.steps.data import TrainingData
from training.steps.evaluate import UNCALIBRATED, Evaluated
from training.steps.fit import Baselines, FittedModel
from training.steps.plan import PERIODS, TrainingPlan
from training.tracking import RunRecord
from training.truth import TruthChoice
from training.tuning import TuneResult


@dataclass(frozen=True)
class RunInputs:
    """The outputs of the earlier steps that a run's record is made of."""

    plan: TrainingPlan
    data: TrainingData
    tuned: TuneResult
    fitted: FittedModel
    baselines: Baselines
    evaluated: Evaluated
    truth: TruthChoice
    code_version: str


def shown_scores(evaluated: Evaluated) -> dict[str, np.ndarray]:
    """The scorers drawn in the plots: all but the uncalibrated model, plus the oracle when
    it is known on every test row."""
    shown = {k: v for k, v in evaluated.scores.items() if k != UNCALIBRATED}
    oracle = evaluated.oracle
    if oracle is not None and not np.isnan(oracle).any():
        shown["oracle"] = oracle
    return shown


def run_tags(inputs: RunInputs, datasets: dict[str, pl.DataFrame]) -> dict[str, str]:
    """The run's tags: what was trained on what, by which code, and which truth (as a note for
    people and, when used, as the structured ``riskcast.truth_manifest`` / ``_digest``)."""
    cfg, ds, model = inputs.plan.cfg, inputs.data.dataset, inputs.fitted.model
    return {
        "riskcast.label": cfg.label,
        "riskcast.population": str(cfg.population),
        "riskcast.scope": json.dumps(model.metadata["scope"], sort_keys=True),
        "riskcast.feature_spec_hash": ds.spec_hash,
        "riskcast.dataset_digest": ds.digest,
        "riskcast.git_commit": inputs.code_version,
        "riskcast.calibration": inputs.fitted.calibration.method,
        **inputs.truth.tags(),
        **{f"riskcast.dataset_digest.{p}": dataset_digest(f) for p, f in datasets.items()},
    }


def run_params(inputs: RunInputs) -> dict[str, object]:
    cfg, ds, split = inputs.plan.cfg, inputs.data.dataset, inputs.plan.split
    return {
        "label": cfg.label,
        "horizon_days": ds.horizon_days,
        "population": str(cfg.population),
        "min_age": cfg.min_age,
        "trials": inputs.plan.trials,
        "n_features": len(ds.features),
        "gap_days": split.gap_days,
        "tune_snapshots": len(split.tune),
        "calibrate_snapshots": len(split.calibrate),
        "test_snapshots": len(split.test),
        "calibration_method": inputs.fitted.calibration.method,
        **{f"lgbm.{k}": v for k, v in inputs.tuned.best_params.items()},
    }


def build_run_record(inputs: RunInputs) -> RunRecord:
    """The run's record; ``model_dir`` and ``dataset_source`` are filled in by the register
    step, which saves the model."""
    plan, data, evaluated = inputs.plan, inputs.data, inputs.evaluated
    cfg, ds, split, spec = plan.cfg, data.dataset, plan.split, plan.spec
    model, evaluation, test_rows = inputs.fitted.model, evaluated.evaluation, evaluated.test_rows
    y = ds.y(test_rows)
    shown = shown_scores(evaluated)
    sample = test_rows.sample(min(cfg.evaluation.shap_rows, test_rows.height), seed=cfg.seed)
    prediction = model.predict(sample)
    importance = domain_importance(model, prediction)
    datasets = data.period_rows(plan)
    card = model_card(
        model_name=cfg.model_name,
        label_name=cfg.label,
        label_description=plan.resolved.label.description,
        horizon_days=ds.horizon_days,
        population=PopulationScope.model_validate(model.metadata["scope"]).describe(),
        periods={p: split.dates(p) for p in PERIODS},
        evaluation=evaluation,
        calibration=inputs.fitted.calibration.as_dict(),
        tiers=[(t.name, t.min_probability) for t in cfg.tiers],
        dataset={
            "rows": ds.frame.height,
            "label_rate": float(ds.y().mean()),
            "digest": ds.digest,
            "spec_hash": ds.spec_hash,
        },
        features=ds.features,
        excluded=spec.protected_features(),
    )
    metrics = evaluation.flat_metrics()
    metrics.update({f"rows.{p}": float(f.height) for p, f in datasets.items()})
    metrics["tuning.best_value"] = inputs.tuned.best_value
    return RunRecord(
        run_name=f"{cfg.label}-{split.test[-1]}",
        params=run_params(inputs),
        tags=run_tags(inputs, datasets),
        metrics=metrics,
        config={
            "training": cfg.model_dump(mode="json"),
            "label": plan.resolved.label.model_dump(),
            "config_file": str(plan.resolved.source),
            "feature_spec_hash": ds.spec_hash,
        },
        datasets={
            p: (f.head(0) if f.height == 0 else f, dataset_digest(f)) for p, f in datasets.items()
        },
        figures={
            "calibration": plot_calibration(y, shown),
            "roc": plot_roc(y, shown),
            "capture": plot_capture(y, shown),
            "shap_by_domain": plot_domain_importance(importance),
            "shap_beeswarm": plot_shap_beeswarm(model, sample, prediction),
        },
        json_artifacts={
            "optuna/study_summary.json": inputs.tuned.summary,
            "evaluation/test_metrics.json": evaluation.test,
            "evaluation/by_period.json": evaluation.by_period,
            "evaluation/auc_differences.json": evaluation.auc_differences,
            "evaluation/shap_by_domain.json": importance.to_dicts(),
            "baselines/describe.json": {n: b.describe() for n, b in inputs.baselines.items()},
            "dataset/snapshots.json": ds.summary()
            .with_columns(pl.col("as_of").cast(pl.String))
            .to_dicts(),
            "dataset/schema.json": {n: str(t) for n, t in ds.frame.schema.items()},
        },
        text_artifacts={"model_card.md": card},
        model_dir=Path(),
        input_example=test_rows.select(ds.features).head(5),
        model_name=cfg.model_name,
    )
