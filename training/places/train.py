"""`riskcast places train` end to end: config -> origins -> cell frames -> Optuna on rolling-origin
folds -> final model -> baselines -> out-of-time evaluation -> MLflow run + ``street-crime``
version (alias ``challenger``).

Reading happens at the start (configs, store, truth) and writing at the end (`registry`);
everything between is a function of frames. The steps and their wall times are returned in
`PlacesTrainResult` (the benchmark prints them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from training.places import baselines as bl
from training.places.card import model_card
from training.places.config import PlacesTrainingConfig, load_places_training_config
from training.places.data import (
    incident_versions,
    origins_from_frame,
    read_truth_intensity,
    store_span,
)
from training.places.evaluate import CURVE_SHARES, PlacesEvaluation, evaluate_places
from training.places.frames import build_frame, descriptions, load_cell_inputs, model_inputs
from training.places.model import PlacesModel, fit_count_booster, fit_dispersion, to_matrix
from training.places.plan import OriginPlan, plan_origins
from training.places.plots import plot_expected_map, plot_pai_curve
from training.places.registry import TEST_PREDICTIONS, PlacesRunRecord, log_places_run
from training.places.tune import CountTuneResult, tune_counts
from training.progress import Laps, Progress, no_progress
from training.tracking import git_commit, tracking_uri, ui_command

TEST_COLUMNS = (
    "cell_id",
    "region",
    "district",
    "week_start",
    "area_km2",
    "observed",
    "expected_count",
    "baseline_last4",
    "baseline_kde",
    "baseline_hawkes",
)


@dataclass
class PlacesTrainResult:
    run_id: str
    model_name: str
    model_version: str
    tracking_uri: str
    ui_command: str
    evaluation: PlacesEvaluation
    tuning: CountTuneResult
    plan: OriginPlan
    rows: dict[str, int]
    n_features: int
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    truth_note: str = ""
    model: PlacesModel | None = None
    frame: pl.DataFrame | None = None  # the cell frame the run used (benchmarks reuse it)


def _rows(frame: pl.DataFrame, origins: tuple[date, ...] | list[date]) -> pl.DataFrame:
    return frame.filter(pl.col("as_of").is_in(list(origins)))


def _xy(frame: pl.DataFrame, features: list[str]) -> tuple[np.ndarray, np.ndarray]:
    return to_matrix(frame, features), frame["label"].cast(pl.Float64).to_numpy()


def _baseline_predictions(
    origins: dict[date, bl.OriginData],
    horizons: list[int],
    kde_params: bl.KdeParams,
    hawkes_params: bl.HawkesParams,
) -> pl.DataFrame:
    """``cell_id, as_of, horizon, baseline_*`` for the given origins."""
    parts = []
    for as_of, o in origins.items():
        last4 = bl.last_weeks_mean(o, horizons).rename({"value": "baseline_last4"})
        kde = bl.kde(o, horizons, bandwidth_km=kde_params.bandwidth_km, weeks=kde_params.weeks)
        hawkes = bl.hawkes(o, horizons, hawkes_params)
        parts.append(
            last4.join(kde.rename({"value": "baseline_kde"}), on=["cell_id", "horizon"])
            .join(hawkes.rename({"value": "baseline_hawkes"}), on=["cell_id", "horizon"])
            .with_columns(pl.lit(as_of, dtype=pl.Date).alias("as_of"))
        )
    return pl.concat(parts)


def train_places(
    *,
    home: Path,
    config: Path | None = None,
    places_config: Path | None = None,
    features_config: Path | None = None,
    trials: int | None = None,
    truth_dir: Path | None = None,
    progress: Progress = no_progress,
) -> PlacesTrainResult:
    """Train, evaluate, log and register one places version (see the module docstring)."""
    started = time.perf_counter()
    laps = Laps()
    cfg, source = load_places_training_config(config)
    n_trials = trials or cfg.trials
    inputs = load_cell_inputs(home, places_config=places_config, features_config=features_config)
    span = store_span(inputs.store)
    plan = plan_origins(cfg, span.last_day, span.first_day)
    horizons = list(range(1, cfg.horizons + 1))
    truth, truth_note = read_truth_intensity(
        truth_dir or cfg.truth_dir,
        resolution=inputs.places.h3_resolution,
        known_extracts=span.extract_ids,
    )

    n_origins = len(plan.all)
    progress(f"building cell frames for {n_origins} origins x {len(horizons)} weeks ...", None)
    frame = build_frame(inputs, plan.all, horizons, with_label=True)
    frame = frame.filter(pl.col("label").is_not_null())
    features = model_inputs(inputs.spec, frame)
    texts = descriptions(inputs.spec)
    laps.lap("cell frames")

    progress(f"tuning: {n_trials} trials over {len(plan.folds)} rolling-origin folds", 0.0)
    folds = []
    for fd in plan.folds:
        xt, yt = _xy(_rows(frame, fd.train), features)
        xv, yv = _xy(_rows(frame, fd.valid), features)
        folds.append((xt, yt, xv, yv))
    tuned = tune_counts(
        folds,
        features,
        cfg.search,
        n_trials,
        seed=cfg.seed,
        num_threads=cfg.num_threads,
        on_trial=lambda done, total, best: progress(
            f"trial {done}/{total}, best deviance {best if best is None else round(best, 5)}",
            done / max(total, 1),
        ),
    )
    laps.lap("tuning")

    progress("fitting the final model and the interval dispersion ...", None)
    xt, yt, xv, yv = folds[-1]
    oof = fit_count_booster(
        xt, yt, features, tuned.best_params, seed=cfg.seed, num_threads=cfg.num_threads
    )
    alpha = fit_dispersion(yv, np.asarray(oof.predict(xv)))
    train_rows = _rows(frame, plan.train)
    x_all, y_all = _xy(train_rows, features)
    booster = fit_count_booster(
        x_all, y_all, features, tuned.best_params, seed=cfg.seed, num_threads=cfg.num_threads
    )
    model = PlacesModel(
        booster,
        features,
        {f: texts.get(f, f) for f in features},
        tuned.objective,
        cfg.horizons,
        alpha=alpha,
        level=cfg.intervals.level,
        metadata={
            "h3_resolution": inputs.places.h3_resolution,
            "best_params": tuned.best_params,
            "origins": plan.as_dict(),
            "trained_through": str(plan.train[-1]),
            "spec_hash": str(getattr(inputs.spec, "digest", lambda: "")()),
        },
    )
    laps.lap("final model")

    progress("fitting baselines on the tuning origins ...", None)
    versions = incident_versions(inputs.store, inputs.places.h3_resolution)
    labels = frame.select("cell_id", "as_of", "horizon", "label")
    tune_origins = origins_from_frame(frame, versions, list(plan.train))
    valid_origins = [tune_origins[d] for d in plan.tuning_valid]
    kde_params, kde_scores = bl.fit_kde(
        valid_origins,
        labels,
        bandwidths_km=cfg.baselines.kde_bandwidths_km,
        weeks=cfg.baselines.kde_weeks,
    )
    hawkes_params, hawkes_scores = bl.fit_hawkes(
        list(tune_origins.values()), labels, horizons, taus=cfg.baselines.hawkes_taus_weeks
    )
    laps.lap("baselines")

    progress("evaluating out of time ...", None)
    test = _rows(frame, plan.test)
    mu = model.predict(test)
    lower, upper = model.intervals(mu)
    test = test.with_columns(
        pl.Series("expected_count", mu), pl.Series("lower_80", lower), pl.Series("upper_80", upper)
    )
    per_h = {f"h{h}": float(_deviance(test.filter(pl.col("horizon") == h))) for h in horizons}
    test_origins = origins_from_frame(test, versions, list(plan.test))
    base = _baseline_predictions(test_origins, [1], kde_params, hawkes_params)
    geometry = pl.concat([o.cells for o in test_origins.values()]).unique("cell_id")
    h1 = (
        test.filter(pl.col("horizon") == 1)
        .join(base, on=["cell_id", "as_of", "horizon"], how="left")
        .join(geometry.select("cell_id", "area_km2", "lat", "lon"), on="cell_id", how="left")
        .rename({"label": "observed"})
    )
    if truth is not None:
        h1 = h1.join(truth.frame, on=["cell_id", "week_start"], how="left").with_columns(
            pl.col("truth_expected_count").fill_null(0.0)
        )
    evaluation = evaluate_places(h1, bootstrap=cfg.bootstrap, seed=cfg.seed)
    evaluation.per_horizon_deviance = per_h
    laps.lap("evaluation")

    progress("logging to MLflow and registering ...", None)
    uri = tracking_uri(home)
    record = _record(
        cfg,
        source,
        plan,
        tuned,
        model,
        evaluation,
        h1,
        kde_params,
        kde_scores,
        hawkes_params,
        hawkes_scores,
        truth_note,
        truth,
        frame,
        features,
        inputs.places.h3_resolution,
    )
    record.tags["riskcast.cell_frame"] = inputs.builder
    logged = log_places_run(record, model, home=home, experiment=cfg.experiment, uri=uri)
    laps.lap("mlflow")
    return PlacesTrainResult(
        run_id=logged.run_id,
        model_name=cfg.model_name,
        model_version=logged.model_version,
        tracking_uri=uri,
        ui_command=ui_command(uri, home),
        evaluation=evaluation,
        tuning=tuned,
        plan=plan,
        rows={"train": train_rows.height, "test": h1.height, "frame": frame.height},
        n_features=len(features),
        seconds=time.perf_counter() - started,
        timings=laps.timings,
        truth_note=truth_note,
        model=model,
        frame=frame,
    )


def _deviance(part: pl.DataFrame) -> float:
    from training.places.metrics import poisson_deviance

    return poisson_deviance(
        part["label"].cast(pl.Float64).to_numpy(), part["expected_count"].to_numpy()
    )


def _record(
    cfg: PlacesTrainingConfig,
    source: Path,
    plan: OriginPlan,
    tuned: CountTuneResult,
    model: PlacesModel,
    evaluation: PlacesEvaluation,
    h1: pl.DataFrame,
    kde_params: bl.KdeParams,
    kde_scores: dict[str, float],
    hawkes_params: bl.HawkesParams,
    hawkes_scores: dict[str, float],
    truth_note: str,
    truth: Any,
    frame: pl.DataFrame,
    features: list[str],
    resolution: int,
) -> PlacesRunRecord:
    card = model_card(
        model_name=cfg.model_name,
        objective=tuned.objective,
        by_objective=tuned.by_objective,
        horizons=cfg.horizons,
        features=features,
        descriptions=model.descriptions,
        plan=plan.as_dict(),
        evaluation=evaluation,
        alpha=model.alpha,
        level=model.level,
        baselines={"kde": kde_params.as_dict(), "hawkes": hawkes_params.as_dict()},
        truth_note=truth_note,
        resolution=resolution,
    )
    last_week = h1.filter(pl.col("as_of") == h1["as_of"].max())
    figures = {
        "pai_curve": plot_pai_curve(evaluation.curves, CURVE_SHARES),
        "expected_map": plot_expected_map(
            last_week, title=f"expected incidents, week of {last_week['week_start'].max()!s}"
        ),
    }
    params: dict[str, Any] = {
        "objective": tuned.objective,
        "horizons": cfg.horizons,
        "one_model_for_all_horizons": True,
        "h3_resolution": resolution,
        "n_features": len(features),
        "trials": tuned.summary.get("n_trials"),
        "train_origins": len(plan.train),
        "test_origins": len(plan.test),
        "interval_alpha": model.alpha,
        "interval_level": model.level,
        "config_file": str(source),
        **{f"lgbm_{k}": v for k, v in tuned.best_params.items()},
        **{f"kde_{k}": v for k, v in kde_params.as_dict().items()},
        **{f"hawkes_{k}": v for k, v in hawkes_params.as_dict().items()},
    }
    tags = {
        "riskcast.entity": "place",
        "riskcast.objective": tuned.objective,
        "riskcast.git_commit": git_commit(),
        "riskcast.truth": truth_note,
        "riskcast.test_weeks": f"{plan.test[0]}..{plan.test[-1]}",
    }
    if truth is not None:
        tags["riskcast.truth_manifest"] = str(truth.manifest)
        tags["riskcast.truth_digest"] = truth.sha256
    metrics = evaluation.metrics()
    metrics["tuning_best_deviance"] = tuned.best_value
    for name, value in tuned.by_objective.items():
        metrics[f"tuning_best_deviance_{name}"] = value
    json_artifacts = {
        "places/origins.json": plan.as_dict(),
        "places/tuning.json": tuned.summary,
        "places/baselines.json": {
            "kde": kde_params.as_dict(),
            "kde_tuning_pai_5": kde_scores,
            "hawkes": hawkes_params.as_dict(),
            "hawkes_tuning_deviance": hawkes_scores,
        },
        "places/evaluation.json": {
            "overall": evaluation.overall,
            "by_region": evaluation.by_region,
            "differences": evaluation.differences,
            "coverage": evaluation.coverage,
            "curves": {"shares": list(CURVE_SHARES), **evaluation.curves},
            "per_horizon_deviance": evaluation.per_horizon_deviance,
        },
        "places/calibration.json": {
            "by_region": evaluation.calibration_region.to_dicts(),
            "by_decile": evaluation.calibration_decile.to_dicts(),
        },
    }
    test_predictions = h1.select([c for c in TEST_COLUMNS if c in h1.columns])
    return PlacesRunRecord(
        run_name=f"{cfg.model_name}-{tuned.objective}-{plan.test[-1]}",
        model_name=cfg.model_name,
        params=params,
        tags=tags,
        metrics=metrics,
        figures=figures,
        json_artifacts=json_artifacts,
        frames={TEST_PREDICTIONS: test_predictions},
        model_card=card,
        input_example=frame.select(features).head(5),
    )
