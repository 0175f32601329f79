"""`riskcast train` end to end: config -> dataset -> splits -> tuning -> model -> calibration ->
baselines -> evaluation -> MLflow run + registered ``challenger`` version.

`train` only orchestrates: each step is a function of `training.steps` with typed inputs and a
typed output (see the table in `training/steps/__init__.py`). I/O happens at the edges:
reading the config, the store and the truth (named by a truth manifest, `training.truth`), and
logging to MLflow. `train` returns a `TrainResult`.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from features.frames.definitions import load_spec
from features.store.offline import OfflineStore
from riskcast import cluster
from training.config import load_training_config
from training.dask_fit import fit_booster_dask
from training.progress import Laps, Progress, no_progress
from training.report import Evaluation
from training.steps.data import (
    check_no_protected,
    feature_infos,
    load_dataset,
    monotone_constraints,
    prepare_training_data,
)
from training.steps.evaluate import evaluate_models
from training.steps.fit import calibrate_model, fit_baselines, fit_booster, tune_model
from training.steps.plan import plan_training
from training.steps.record import RunInputs, build_run_record
from training.steps.register import register_run
from training.tracking import git_commit, tracking_uri, ui_command
from training.truth import read_p_true, resolve_truth
from training.tuning import TuneResult, study_storage

__all__ = [
    "Progress",
    "TrainResult",
    "check_no_protected",
    "feature_infos",
    "monotone_constraints",
    "train",
]


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


def cluster_tags(session: cluster.Session, tuned: TuneResult) -> dict[str, str]:
    """Tags of a run trained on Dask (a single-machine run has none of them): the workers that
    ran the trials and the final fit, and the fit's fixed rounds (lightgbm.dask, no early
    stopping)."""
    return {
        "riskcast.compute": "dask",
        "riskcast.dask_workers": str(session.workers),
        "riskcast.final_fit": f"lightgbm.dask, {tuned.best_params['num_boost_round']} rounds",
    }


def _round(value: float | None) -> str:
    return "-" if value is None else f"{value:.5f}"


def train(
    *,
    home: Path,
    config: Path | None = None,
    features_config: Path | None = None,
    trials: int | None = None,
    truth_dir: Path | None = None,
    progress: Progress = no_progress,
) -> TrainResult:
    """Train, evaluate, log and register one model; see the module docstring. ``truth_dir``
    (else the config's): a truth manifest, or a folder holding ``truth-manifest.json``.

    With ``RISKCAST_DASK_SCHEDULER`` set (or inside a `riskcast.cluster` session already
    open), the tuning trials and the final fit run on the Dask cluster
    (`training.dask_tune`, `training.dask_fit`); every other step is the same code."""
    opened = cluster.current()
    with contextlib.ExitStack() as stack:
        session = opened or stack.enter_context(cluster.session())
        return _train(
            home=home,
            config=config,
            features_config=features_config,
            trials=trials,
            truth_dir=truth_dir,
            progress=progress,
            session=session,
        )


def _train(
    *,
    home: Path,
    config: Path | None,
    features_config: Path | None,
    trials: int | None,
    truth_dir: Path | None,
    progress: Progress,
    session: cluster.Session | None,
) -> TrainResult:
    started = time.perf_counter()
    laps = Laps()
    resolved = load_training_config(config)
    cfg = resolved.training
    spec = load_spec(features_config)
    store = OfflineStore(home)
    plan = plan_training(resolved, spec, trials)
    truth = resolve_truth(
        truth_dir or cfg.truth_dir,
        known_extracts={d.extract_id for d in store.state().deliveries},
        label_is_any_case=resolved.label.categories is None,
    )

    progress(f"building {len(plan.split.used)} snapshots ({cfg.population}) ...", None)
    data = prepare_training_data(plan, load_dataset(store, plan))
    laps.lap("dataset")

    where = "" if session is None else f" on {session.workers} Dask workers"
    progress(
        f"tuning: {plan.trials} trials over {len(plan.folds)} rolling-origin folds{where}", 0.0
    )
    tuned = tune_model(
        plan,
        data,
        storage=study_storage(home),
        on_trial=lambda done, total, best: progress(
            f"trial {done}/{total}, best {cfg.search.metric} {_round(best)}",
            done / max(total, 1),
        ),
    )
    laps.lap("tuning")

    if session is None:
        progress("fitting the final model on the tuning period ...", None)
        booster = fit_booster(plan, data, tuned)
    else:  # lightgbm.dask: the rounds fixed from the tuning folds, one fit, a timeout
        rounds = tuned.best_params["num_boost_round"]
        progress(f"fitting the final model on the Dask cluster ({rounds} rounds) ...", None)
        booster = fit_booster_dask(session, plan, data, tuned)
    fitted = calibrate_model(plan, data, tuned, booster)
    laps.lap("final model")

    progress("fitting baselines ...", None)
    baselines = fit_baselines(plan, data)
    laps.lap("baselines")

    progress("evaluating out of time ...", None)
    p_true = None if truth.truth is None else read_p_true(truth.truth, data.dataset.horizon_days)
    evaluated = evaluate_models(plan, data, fitted.model, baselines, p_true)
    del p_true
    laps.lap("evaluation")

    progress("logging to MLflow and registering ...", None)
    uri = tracking_uri(home)
    record = build_run_record(
        RunInputs(plan, data, tuned, fitted, baselines, evaluated, truth, git_commit())
    )
    if session is not None:  # the same record, and where it was computed
        record.tags.update(cluster_tags(session, tuned))
    logged = register_run(
        record,
        fitted.model,
        dataset_source=store.root,
        home=home,
        experiment=cfg.experiment,
        uri=uri,
    )
    laps.lap("mlflow")
    return TrainResult(
        run_id=logged.run_id,
        model_name=cfg.model_name,
        model_version=logged.model_version,
        model_uri=logged.model_uri,
        tracking_uri=uri,
        ui_command=ui_command(uri, home),
        evaluation=evaluated.evaluation,
        tuning=tuned,
        rows={p: f.height for p, f in data.period_rows(plan).items()},
        n_features=len(data.dataset.features),
        seconds=time.perf_counter() - started,
        timings=laps.timings,
        calibration=fitted.calibration.as_dict(),
    )
