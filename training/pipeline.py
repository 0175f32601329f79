"""`riskcast train` end to end: config -> dataset -> splits -> tuning -> model -> calibration ->
baselines -> evaluation -> MLflow run + registered ``challenger`` version.

I/O happens at the edges (reading the store and the truth folder, logging to MLflow); the steps
in between are the pure functions of `training.*`. `train` returns a `TrainResult`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from features.contract import PROTECTED_ATTRIBUTES
from features.errors import ConfigError
from features.frames.definitions import Aggregation, FeatureSpec, load_spec
from features.store.offline import OfflineStore
from training.baselines import LogisticBaseline, PointsScale
from training.calibration import Method, choose_calibrator, fit_calibrator
from training.config import ResolvedConfig, load_training_config
from training.dataset import Dataset, add_extra_inputs, build_dataset
from training.evaluation import plot_calibration, plot_capture, plot_roc
from training.model import Calibrator, FeatureInfo, RiskModel, fit_lgbm, sigmoid
from training.report import (
    MODEL,
    Evaluation,
    domain_importance,
    evaluate,
    model_card,
    plot_domain_importance,
    plot_shap_beeswarm,
)
from training.splits import PeriodSplit, rolling_origin_folds, select_dates, split_periods
from training.tracking import RunRecord, git_commit, log_training_run, tracking_uri, ui_command
from training.tuning import TuneResult, tune

Progress = Callable[[str, float | None], None]
"""``progress(message, fraction_of_tuning_done_or_None)``."""


@dataclass
class TrainResult:
    run_id: str
    model_name: str
    model_version: str
    model_uri: str
    tracking_uri: str
    ui_command: str
    evaluation: Evaluation
    tuning: TuneResult
    rows: dict[str, int]
    n_features: int
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)


def monotone_constraints(spec: FeatureSpec) -> dict[str, int]:
    """+1 / -1 per model input from the feature metadata (0 = unconstrained)."""
    return {f.name: int(f.direction) for f in spec.features if not f.protected}


EXTRA_DOMAIN = "extra_inputs"
"""The domain of model inputs joined from the config's ``extra_inputs`` table."""


def feature_infos(spec: FeatureSpec, extra: Sequence[str] = ()) -> list[FeatureInfo]:
    """Metadata of the model inputs: the spec's, then the ``extra`` inputs (unconstrained)."""
    return [
        FeatureInfo(f.name, f.domain.value, f.kind.value, int(f.direction), f.description)
        for f in spec.features
        if not f.protected
    ] + [FeatureInfo(n, EXTRA_DOMAIN, "static", 0, "extra input (extra_inputs)") for n in extra]


def check_no_protected(features: list[str], spec: FeatureSpec) -> None:
    """Refuse (loudly) if a protected attribute or protected feature is among model inputs."""
    leaked = sorted(set(features) & (set(PROTECTED_ATTRIBUTES) | set(spec.protected_features())))
    if leaked:
        raise ConfigError(f"protected attributes must never be model inputs: {', '.join(leaked)}")


def count_features(spec: FeatureSpec) -> list[str]:
    """Inputs that are counts or sums (log-transformed by the logistic baseline)."""
    kinds = {Aggregation.COUNT, Aggregation.COUNT_DISTINCT, Aggregation.SUM}
    return [f.name for f in spec.features if not f.protected and f.aggregation in kinds]


def calibrate(
    p_raw: np.ndarray, y: np.ndarray, as_of: np.ndarray, method: str
) -> tuple[Calibrator, dict[str, Any]]:
    """Fit the calibrator on the calibration period. ``auto``: with two or more snapshots,
    isotonic vs Platt is chosen by Brier on the last snapshot of calibrators fitted on the
    earlier ones (out of time); with one snapshot, by 2-fold cross-validation over persons.
    The chosen method is then refitted on the whole calibration period."""
    if method in ("isotonic", "platt"):
        return fit_calibrator(p_raw, y, method), {"method": method, "how": "configured"}  # type: ignore[arg-type]
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
    return fit_calibrator(p_raw, y, chosen), {"method": chosen, "how": how}


def load_oracle(truth_dir: Path | None, keys: pl.DataFrame, horizon_days: int) -> np.ndarray | None:
    """p_true from the simulator's truth for ``keys`` (NaN where unknown); None without truth."""
    if truth_dir is None:
        return None
    path = truth_dir / "labels.parquet"
    if not path.is_file():
        return None
    truth = (
        pl.scan_parquet(path)
        .filter(pl.col("horizon_days") == horizon_days)
        .select("person_id", "as_of", "p_true")
        .collect()
    )
    joined = keys.select("person_id", "as_of").join(truth, on=["person_id", "as_of"], how="left")
    return joined["p_true"].cast(pl.Float64).fill_null(float("nan")).to_numpy()


def find_truth(
    explicit: Path | None, resolved: ResolvedConfig, store: OfflineStore
) -> tuple[Path | None, str]:
    """The truth folder: ``explicit``, else the config's ``truth_dir``, else
    ``<delivery>_truth`` of the config's ``delivery``; used only if it belongs to a delivery
    in the store and the label is the simulator's (any category)."""
    cfg = resolved.training
    candidate = explicit or cfg.truth_dir
    if candidate is None and cfg.delivery is not None:
        candidate = cfg.delivery.with_name(cfg.delivery.name + "_truth")
    if candidate is None:
        return None, "no truth folder given"
    sim = candidate / "simulation.json"
    if not sim.is_file():
        return None, f"{candidate} has no simulation.json"
    extract = json.loads(sim.read_text("utf-8")).get("extract_id")
    known = {d.extract_id for d in store.state().deliveries}
    if extract not in known:
        return None, f"{candidate} is the truth of {extract}, not of a delivery in the store"
    if resolved.label.categories is not None:
        return None, "the truth's p_true is for any new case; the label is narrower"
    return candidate, f"oracle from {candidate}"


def config_digest(resolved: ResolvedConfig) -> str:
    raw = {
        "training": resolved.training.model_dump(mode="json"),
        "label": resolved.label.model_dump(),
    }
    return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:16]


def effective_threads(configured: int, rows: int) -> int:
    """LightGBM threads: as configured, else one for small sets or when the machine is busy
    (OpenMP's spinning threads on oversubscribed cores run several times slower than one
    thread), else every core."""
    if configured > 0:
        return configured
    cores = os.cpu_count() or 1
    busy = os.getloadavg()[0] > cores - 0.5 if hasattr(os, "getloadavg") else False
    return 1 if rows < 200_000 or busy else cores


def _round(value: float | None) -> str:
    return "-" if value is None else f"{value:.5f}"


def _noop(_message: str, _fraction: float | None) -> None:
    return None


def train(
    *,
    home: Path,
    config: Path | None = None,
    features_config: Path | None = None,
    trials: int | None = None,
    truth_dir: Path | None = None,
    progress: Progress = _noop,
) -> TrainResult:
    """Train, evaluate, log and register one model; see the module docstring."""
    started = time.perf_counter()
    timings: dict[str, float] = {}
    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        timings[name] = now - clock[0]
        clock[0] = now

    resolved = load_training_config(config)
    cfg = resolved.training
    n_trials = trials or cfg.trials
    spec = load_spec(features_config)
    store = OfflineStore(home)
    split = split_periods(cfg.snapshots.dates(), cfg.periods, resolved.gap_days)
    fold_dates = rolling_origin_folds(split.tune, cfg.folds, resolved.gap_days)
    truth, truth_note = find_truth(truth_dir, resolved, store)

    progress(f"building {len(split.used)} snapshots ({cfg.population}) ...", None)
    ds = build_dataset(store, spec, split.used, cfg.population, resolved.label, cfg.label)
    ds = add_extra_inputs(ds, cfg.extra_inputs)
    check_no_protected(ds.features, spec)
    lap("dataset")
    monotone = monotone_constraints(spec)
    threads = effective_threads(cfg.num_threads, ds.frame.height)
    folds = []
    for fd in fold_dates:
        tr, va = select_dates(ds.frame, fd.train), select_dates(ds.frame, fd.valid)
        folds.append((ds.x(tr), ds.y(tr), ds.x(va), ds.y(va)))
    study = f"{cfg.model_name}:{cfg.label}:{config_digest(resolved)[:8]}:{ds.digest[:8]}"
    progress(f"tuning: {n_trials} trials over {len(folds)} rolling-origin folds", 0.0)
    tuned = tune(
        folds,
        cfg.search,
        n_trials,
        monotone=monotone,
        seed=cfg.seed,
        storage=f"sqlite:///{(home / 'optuna.db').resolve()}",
        study_name=study,
        num_threads=threads,
        on_trial=lambda done, total, best: progress(
            f"trial {done}/{total}, best {cfg.search.metric} {_round(best)}",
            done / max(total, 1),
        ),
    )
    del folds
    lap("tuning")

    progress("fitting the final model on the tuning period ...", None)
    tune_rows = select_dates(ds.frame, split.tune)
    booster = fit_lgbm(
        ds.x(tune_rows),
        ds.y(tune_rows),
        tuned.best_params,
        monotone,
        seed=cfg.seed,
        num_threads=threads,
    )
    cal_rows = select_dates(ds.frame, split.calibrate)
    p_cal = sigmoid(np.asarray(booster.predict(ds.x(cal_rows).to_numpy(), raw_score=True)))
    calibrator, cal_info = calibrate(
        p_cal, ds.y(cal_rows), cal_rows["as_of"].to_numpy(), cfg.calibration.method
    )
    model = RiskModel(
        booster,
        calibrator,
        cfg.tier_objects(),
        feature_infos(spec, ds.extra),
        metadata={
            "label": cfg.label,
            "horizon_days": ds.horizon_days,
            "population": str(cfg.population),
            "spec_hash": ds.spec_hash,
            "dataset_digest": ds.digest,
            "best_params": tuned.best_params,
        },
    )
    lap("final model")

    progress("fitting baselines ...", None)
    baselines: dict[str, LogisticBaseline | PointsScale] = {
        "logistic": LogisticBaseline(ds.features, count_features(spec)),
        "points": PointsScale(
            cfg.baselines.points_features or ds.features,
            {k: v for k, v in monotone.items() if v != 0},
            max_factors=cfg.baselines.points_max_factors,
            seed=cfg.seed,
        ),
    }
    for b in baselines.values():
        b.fit(ds.x(tune_rows), ds.y(tune_rows))
    lap("baselines")

    progress("evaluating out of time ...", None)
    eval_rows = select_dates(ds.frame, [*split.calibrate, *split.test])
    test_rows = select_dates(ds.frame, split.test)
    y_test = ds.y(test_rows)
    scores = {MODEL: model.predict_proba(test_rows)}
    scores["model_uncalibrated"] = sigmoid(model.raw_score(test_rows))
    scores.update({name: b.predict_proba(ds.x(test_rows)) for name, b in baselines.items()})
    oracle = load_oracle(truth, test_rows, ds.horizon_days)
    evaluation = evaluate(
        y_test,
        scores,
        test_rows["as_of"].to_numpy(),
        n_boot=cfg.evaluation.bootstrap,
        seed=cfg.seed,
        oracle=oracle,
    )
    by_period = {MODEL: model.predict_proba(eval_rows)}
    by_period.update({n: b.predict_proba(ds.x(eval_rows)) for n, b in baselines.items()})
    from training.report import period_metrics

    evaluation.by_period.update(
        period_metrics(ds.y(eval_rows), by_period, eval_rows["as_of"].to_numpy())
    )
    lap("evaluation")

    progress("logging to MLflow and registering ...", None)
    uri = tracking_uri(home)
    record = _run_record(
        resolved,
        spec,
        ds,
        split,
        tuned,
        model,
        baselines,
        evaluation,
        scores,
        oracle,
        cal_info,
        test_rows,
        truth_note,
        n_trials,
    )
    with tempfile.TemporaryDirectory(prefix="riskcast-train-") as tmp:
        record.model_dir = model.save(Path(tmp) / "risk_model")
        record.dataset_source = str(store.root.resolve())
        (record.model_dir / "model_card.md").write_text(record.text_artifacts["model_card.md"])
        logged = log_training_run(record, home=home, experiment=cfg.experiment, uri=uri)
    lap("mlflow")
    return TrainResult(
        run_id=logged.run_id,
        model_name=cfg.model_name,
        model_version=logged.model_version,
        model_uri=logged.model_uri,
        tracking_uri=uri,
        ui_command=ui_command(uri, home),
        evaluation=evaluation,
        tuning=tuned,
        rows={
            p: select_dates(ds.frame, split.dates(p)).height for p in ("tune", "calibrate", "test")
        },
        n_features=len(ds.features),
        seconds=time.perf_counter() - started,
        timings=timings,
        calibration=cal_info,
    )


def _run_record(
    resolved: ResolvedConfig,
    spec: FeatureSpec,
    ds: Dataset,
    split: PeriodSplit,
    tuned: TuneResult,
    model: RiskModel,
    baselines: dict[str, Any],
    evaluation: Evaluation,
    scores: dict[str, np.ndarray],
    oracle: np.ndarray | None,
    cal_info: dict[str, Any],
    test_rows: pl.DataFrame,
    truth_note: str,
    n_trials: int,
) -> RunRecord:
    cfg = resolved.training
    y = ds.y(test_rows)
    shown = {k: v for k, v in scores.items() if k != "model_uncalibrated"}
    if oracle is not None and not np.isnan(oracle).any():
        shown["oracle"] = oracle
    sample = test_rows.sample(min(cfg.evaluation.shap_rows, test_rows.height), seed=cfg.seed)
    prediction = model.predict(sample)
    importance = domain_importance(model, prediction)
    datasets = {p: select_dates(ds.frame, split.dates(p)) for p in ("tune", "calibrate", "test")}
    periods = {p: split.dates(p) for p in ("tune", "calibrate", "test")}
    card = model_card(
        model_name=cfg.model_name,
        label_name=cfg.label,
        label_description=resolved.label.description,
        horizon_days=ds.horizon_days,
        population=str(cfg.population),
        periods=periods,
        evaluation=evaluation,
        calibration=cal_info,
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
    tags = {
        "riskcast.label": cfg.label,
        "riskcast.population": str(cfg.population),
        "riskcast.feature_spec_hash": ds.spec_hash,
        "riskcast.dataset_digest": ds.digest,
        "riskcast.git_commit": git_commit(),
        "riskcast.calibration": cal_info["method"],
        "riskcast.truth": truth_note,
        **{f"riskcast.dataset_digest.{p}": _digest(f) for p, f in datasets.items()},
    }
    params = {
        "label": cfg.label,
        "horizon_days": ds.horizon_days,
        "population": str(cfg.population),
        "trials": n_trials,
        "n_features": len(ds.features),
        "gap_days": split.gap_days,
        "tune_snapshots": len(split.tune),
        "calibrate_snapshots": len(split.calibrate),
        "test_snapshots": len(split.test),
        "calibration_method": cal_info["method"],
        **{f"lgbm.{k}": v for k, v in tuned.best_params.items()},
    }
    metrics = evaluation.flat_metrics()
    metrics.update({f"rows.{p}": float(f.height) for p, f in datasets.items()})
    metrics["tuning.best_value"] = tuned.best_value
    return RunRecord(
        run_name=f"{cfg.label}-{split.test[-1]}",
        params=params,
        tags=tags,
        metrics=metrics,
        config={
            "training": cfg.model_dump(mode="json"),
            "label": resolved.label.model_dump(),
            "config_file": str(resolved.source),
            "feature_spec_hash": ds.spec_hash,
        },
        datasets={p: (f.head(0) if f.height == 0 else f, _digest(f)) for p, f in datasets.items()},
        figures={
            "calibration": plot_calibration(y, shown),
            "roc": plot_roc(y, shown),
            "capture": plot_capture(y, shown),
            "shap_by_domain": plot_domain_importance(importance),
            "shap_beeswarm": plot_shap_beeswarm(model, sample, prediction),
        },
        json_artifacts={
            "optuna/study_summary.json": tuned.summary,
            "evaluation/test_metrics.json": evaluation.test,
            "evaluation/by_period.json": evaluation.by_period,
            "evaluation/auc_differences.json": evaluation.auc_differences,
            "evaluation/shap_by_domain.json": importance.to_dicts(),
            "baselines/describe.json": {n: b.describe() for n, b in baselines.items()},
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


def _digest(frame: pl.DataFrame) -> str:
    from training.dataset import dataset_digest

    return dataset_digest(frame)
