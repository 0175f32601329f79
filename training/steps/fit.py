"""Steps ``tune``, ``fit``, ``calibrate`` and ``baselines``: the model and what it is
compared with, all fitted on the tuning period (the calibrator on the calibration period)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np

from training.baselines import LogisticBaseline, PointsScale
from training.calibration import Method, choose_calibrator, fit_calibrator
from training.model import Calibrator, RiskModel, fit_lgbm, sigmoid
from training.steps.data import TrainingData, count_features, feature_infos
from training.steps.plan import PERIODS, TrainingPlan, config_digest
from training.tuning import TuneResult, tune

Baseline = LogisticBaseline | PointsScale
Baselines = dict[str, Baseline]
OnTrial = Callable[[int, int, float | None], None]
"""``on_trial(done, total, best_value_or_None)`` after each Optuna trial."""


@dataclass(frozen=True)
class CalibrationChoice:
    """Which calibrator was chosen and how (recorded in the run and the model card)."""

    method: str
    how: str

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "how": self.how}


@dataclass(frozen=True)
class FittedModel:
    """The model to register (booster + calibrator + tiers + metadata) and its calibration."""

    model: RiskModel
    calibration: CalibrationChoice


def study_name(plan: TrainingPlan, data: TrainingData) -> str:
    """The Optuna study: the same config on the same data resumes it, anything else starts
    another one."""
    cfg = plan.cfg
    return (
        f"{cfg.model_name}:{cfg.label}:{config_digest(plan.resolved)[:8]}:{data.dataset.digest[:8]}"
    )


def tune_model(
    plan: TrainingPlan, data: TrainingData, *, storage: str | None, on_trial: OnTrial | None = None
) -> TuneResult:
    """Search the configured space over the rolling-origin folds of the tuning period."""
    ds, cfg = data.dataset, plan.cfg
    folds = []
    for fd in plan.folds:
        tr, va = data.rows(fd.train), data.rows(fd.valid)
        folds.append((ds.x(tr), ds.y(tr), ds.x(va), ds.y(va)))
    return tune(
        folds,
        cfg.search,
        plan.trials,
        monotone=data.monotone,
        seed=cfg.seed,
        storage=storage,
        study_name=study_name(plan, data),
        num_threads=data.threads,
        on_trial=on_trial,
    )


def fit_booster(plan: TrainingPlan, data: TrainingData, tuned: TuneResult) -> lgb.Booster:
    """The final LightGBM on the whole tuning period with the best parameters found."""
    ds = data.dataset
    rows = data.rows(plan.split.tune)
    return fit_lgbm(
        ds.x(rows),
        ds.y(rows),
        tuned.best_params,
        data.monotone,
        seed=plan.cfg.seed,
        num_threads=data.threads,
    )


def choose_calibration(
    p_raw: np.ndarray, y: np.ndarray, as_of: np.ndarray, method: str
) -> tuple[Calibrator, CalibrationChoice]:
    """Fit the calibrator on the calibration period. ``auto``: with two or more snapshots,
    isotonic vs Platt is chosen by Brier on the last snapshot of calibrators fitted on the
    earlier ones (out of time); with one snapshot, by 2-fold cross-validation over persons.
    The chosen method is then refitted on the whole calibration period."""
    if method in ("isotonic", "platt"):
        configured: Method = "isotonic" if method == "isotonic" else "platt"
        return fit_calibrator(p_raw, y, configured), CalibrationChoice(method, "configured")
    dates = np.unique(as_of)
    if dates.size >= 2:
        early, late = as_of < dates[-1], as_of == dates[-1]
        chosen = choose_calibrator(p_raw[early], y[early], p_raw[late], y[late]).method
        how = f"lower Brier on {str(dates[-1])[:10]} of calibrators fitted on earlier snapshots"
    else:
        fold = np.arange(p_raw.size) % 2 == 0
        brier: dict[Method, float] = {}
        methods: tuple[Method, ...] = ("isotonic", "platt")
        for m in methods:
            scores = []
            for part in (fold, ~fold):
                cal = fit_calibrator(p_raw[part], y[part], m)
                scores.append(float(np.mean((cal.predict(p_raw[~part]) - y[~part]) ** 2)))
            brier[m] = float(np.mean(scores))
        chosen = min(brier, key=lambda m: (brier[m], m != "platt"))
        how = "lower 2-fold cross-validated Brier on the single calibration snapshot"
    return fit_calibrator(p_raw, y, chosen), CalibrationChoice(chosen, how)


def calibrate_model(
    plan: TrainingPlan, data: TrainingData, tuned: TuneResult, booster: lgb.Booster
) -> FittedModel:
    """Calibrate ``booster`` on the calibration period and assemble the `RiskModel` with its
    tiers, feature metadata and the metadata a registered version carries."""
    ds, cfg, split = data.dataset, plan.cfg, plan.split
    cal_rows = data.rows(split.calibrate)
    p_cal = sigmoid(np.asarray(booster.predict(ds.x(cal_rows).to_numpy(), raw_score=True)))
    calibrator, choice = choose_calibration(
        p_cal, ds.y(cal_rows), cal_rows["as_of"].to_numpy(), cfg.calibration.method
    )
    model = RiskModel(
        booster,
        calibrator,
        cfg.tier_objects(),
        feature_infos(plan.spec, ds.extra),
        metadata={
            "label": cfg.label,
            "horizon_days": ds.horizon_days,
            "population": str(cfg.population),
            "scope": data.scope.model_dump(mode="json"),
            "snapshots": {p: [str(d) for d in split.dates(p)] for p in PERIODS},
            "spec_hash": ds.spec_hash,
            "dataset_digest": ds.digest,
            "best_params": tuned.best_params,
        },
    )
    return FittedModel(model, choice)


def fit_baselines(plan: TrainingPlan, data: TrainingData) -> Baselines:
    """The logistic regression and the points scale the model must beat, on the tuning period."""
    ds, cfg = data.dataset, plan.cfg
    baselines: Baselines = {
        "logistic": LogisticBaseline(ds.features, count_features(plan.spec)),
        "points": PointsScale(
            cfg.baselines.points_features or ds.features,
            {k: v for k, v in data.monotone.items() if v != 0},
            max_factors=cfg.baselines.points_max_factors,
            seed=cfg.seed,
        ),
    }
    rows = data.rows(plan.split.tune)
    for b in baselines.values():
        b.fit(ds.x(rows), ds.y(rows))
    return baselines
