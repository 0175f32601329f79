"""Each step of `riskcast train` alone, on small synthetic inputs (no store, no MLflow), and the
truth manifest that hands the simulator's truth to training and audits."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from features.frames.definitions import FeatureSpec, load_spec
from riskcast.digest import sha256_file
from riskcast.errors import ConfigError, InputError
from riskcast.truth import (
    TRUTH_MANIFEST,
    TruthFile,
    TruthManifest,
    read_truth_manifest,
    write_truth_manifest,
)
from tests.training_helpers import write_config
from training.config import load_training_config
from training.dataset import Dataset
from training.steps.data import TrainingData, monotone_constraints, prepare_training_data
from training.steps.evaluate import UNCALIBRATED, evaluate_models
from training.steps.fit import (
    calibrate_model,
    choose_calibration,
    fit_baselines,
    fit_booster,
    tune_model,
)
from training.steps.plan import TrainingPlan, plan_training
from training.steps.record import RunInputs, build_run_record
from training.truth import (
    TRUTH_DIGEST_TAG,
    TRUTH_MANIFEST_TAG,
    TRUTH_NOTE_TAG,
    TruthChoice,
    oracle_for_run,
    resolve_truth,
)
from training.tuning import TuneResult

PERSONS = 160
EXTRACT = "2025-12-31-sim-s1"
PARAMS = {"num_boost_round": 25, "num_leaves": 4, "learning_rate": 0.2, "min_child_samples": 5}


@pytest.fixture(scope="module")
def spec() -> FeatureSpec:
    return load_spec(None)


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory, spec: FeatureSpec) -> TrainingPlan:
    config = write_config(tmp_path_factory.mktemp("steps") / "training.yaml")
    return plan_training(load_training_config(config), spec, trials=1)


def _dataset(plan: TrainingPlan, spec: FeatureSpec, seed: int = 0) -> Dataset:
    """Every planned snapshot, PERSONS persons each; the label follows ``cases_365d``."""
    rng = np.random.default_rng(seed)
    inputs = spec.model_inputs()
    dates = plan.split.used
    n = PERSONS * len(dates)
    x = rng.poisson(1.0, size=(n, len(inputs))).astype(np.float64)
    signal = x[:, inputs.index("cases_365d")]
    label = rng.random(n) < 1 / (1 + np.exp(-(signal - 1.5)))
    frame = pl.DataFrame(
        {
            "person_id": [f"P{i % PERSONS:05d}" for i in range(n)],
            "as_of": [d for d in dates for _ in range(PERSONS)],
            **{name: x[:, j] for j, name in enumerate(inputs)},
            "label": label.astype(np.int8),
        }
    ).sort("as_of", "person_id")
    return Dataset(
        frame=frame,
        features=inputs,
        protected=spec.protected_features(),
        label_name=plan.cfg.label,
        horizon_days=plan.resolved.label.horizon_days,
        spec_hash=spec.spec_hash(),
    )


@pytest.fixture(scope="module")
def data(plan: TrainingPlan, spec: FeatureSpec) -> TrainingData:
    return prepare_training_data(plan, _dataset(plan, spec))


@pytest.fixture(scope="module")
def tuned() -> TuneResult:
    return TuneResult(best_params=dict(PARAMS), best_value=0.5, metric="log_loss")


# ---- plan and prepare ----------------------------------------------------------------------


def test_plan_keeps_periods_apart_and_takes_the_trials_given(plan: TrainingPlan) -> None:
    split = plan.split
    assert plan.trials == 1
    assert split.tune[-1] < split.calibrate[0] < split.test[0]
    assert (split.test[0] - split.calibrate[-1]).days >= plan.resolved.gap_days
    assert plan.folds and all(set(f.valid) <= set(split.tune) for f in plan.folds)
    again = plan_training(plan.resolved, plan.spec)
    assert again.trials == plan.cfg.trials == 2 and again.split == split


def test_prepare_refuses_a_protected_input(plan: TrainingPlan, spec: FeatureSpec) -> None:
    ds = _dataset(plan, spec)
    leaked = replace(
        ds,
        frame=ds.frame.with_columns(pl.lit(1.0).alias("ethnicity")),
        features=[*ds.features, "ethnicity"],
    )
    with pytest.raises(ConfigError, match="ethnicity"):
        prepare_training_data(plan, leaked)


def test_prepare_takes_monotone_constraints_threads_and_scope(
    data: TrainingData, plan: TrainingPlan, spec: FeatureSpec
) -> None:
    assert data.monotone == monotone_constraints(spec)
    assert data.monotone["cases_365d"] == 1 and data.monotone["days_since_last_case"] == -1
    assert data.threads == plan.cfg.num_threads == 1
    assert data.scope.min_age == plan.cfg.min_age
    rows = data.period_rows(plan)
    assert set(rows) == {"tune", "calibrate", "test"}
    assert rows["test"]["as_of"].unique().to_list() == plan.split.test
    assert sum(f.height for f in rows.values()) <= data.dataset.frame.height


# ---- tune, fit, calibrate, baselines -------------------------------------------------------


def test_tune_runs_the_planned_trials_over_the_folds(
    plan: TrainingPlan, data: TrainingData
) -> None:
    seen: list[tuple[int, int]] = []
    result = tune_model(plan, data, storage=None, on_trial=lambda d, t, _b: seen.append((d, t)))
    assert seen == [(1, 1)]
    assert result.metric == "log_loss" and 0 < result.best_value < 1
    assert {"learning_rate", "num_leaves", "min_child_samples"} <= set(result.best_params)


def test_calibration_configured_or_chosen_out_of_time() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(0.01, 0.9, 4000)
    y = (rng.random(4000) < p**1.5).astype(np.int64)
    one = np.full(4000, np.datetime64("2023-12-31"))
    cal, choice = choose_calibration(p, y, one, "platt")
    assert (choice.method, choice.how) == ("platt", "configured") and cal.method == "platt"
    _, choice = choose_calibration(p, y, one, "auto")
    assert choice.method in ("isotonic", "platt") and "2-fold" in choice.how
    two = np.where(np.arange(4000) < 2000, np.datetime64("2023-09-30"), np.datetime64("2023-12-31"))
    _, choice = choose_calibration(p, y, two, "auto")
    assert choice.how.startswith("lower Brier on 2023-12-31")


def test_fit_and_calibrate_give_a_registrable_model(
    plan: TrainingPlan, data: TrainingData, tuned: TuneResult
) -> None:
    booster = fit_booster(plan, data, tuned)
    assert booster.num_trees() == PARAMS["num_boost_round"]
    fitted = calibrate_model(plan, data, tuned, booster)
    model = fitted.model
    assert model.feature_names == data.dataset.features
    assert model.metadata["best_params"] == tuned.best_params
    assert model.metadata["snapshots"]["test"] == [str(d) for d in plan.split.test]
    assert fitted.calibration.method == model.calibrator.method  # type: ignore[union-attr]
    test = data.rows(plan.split.test)
    p = model.predict_proba(test)
    assert p.shape == (test.height,) and np.all((p >= 0) & (p <= 1))
    high = test.filter(pl.col("cases_365d") >= 3)
    low = test.filter(pl.col("cases_365d") == 0)
    assert model.predict_proba(high).mean() > model.predict_proba(low).mean()


def test_baselines_are_fitted_on_the_tuning_period(plan: TrainingPlan, data: TrainingData) -> None:
    baselines = fit_baselines(plan, data)
    assert set(baselines) == {"logistic", "points"}
    test = data.dataset.x(data.rows(plan.split.test))
    for b in baselines.values():
        p = b.predict_proba(test)
        assert p.shape == (test.height,) and np.all((p > 0) & (p < 1))


# ---- evaluate and report -------------------------------------------------------------------


def _fitted_parts(plan: TrainingPlan, data: TrainingData, tuned: TuneResult):
    fitted = calibrate_model(plan, data, tuned, fit_booster(plan, data, tuned))
    return fitted, fit_baselines(plan, data)


def test_evaluate_compares_every_scorer_and_the_oracle_where_known(
    plan: TrainingPlan, data: TrainingData, tuned: TuneResult
) -> None:
    fitted, baselines = _fitted_parts(plan, data, tuned)
    without = evaluate_models(plan, data, fitted.model, baselines)
    assert without.oracle is None and "oracle" not in without.evaluation.test
    assert set(without.scores) == {"model", UNCALIBRATED, "logistic", "points"}
    assert set(without.evaluation.auc_differences) == {"logistic", "points"}
    assert set(without.evaluation.by_period) == {
        str(d) for d in [*plan.split.calibrate, *plan.split.test]
    }
    test = without.test_rows
    half = test.head(test.height // 2).select("person_id", "as_of")
    p_true = half.with_columns(pl.lit(0.3).alias("p_true"))
    with_truth = evaluate_models(plan, data, fitted.model, baselines, p_true)
    assert with_truth.oracle is not None
    assert np.isnan(with_truth.oracle).sum() == test.height - half.height
    assert with_truth.evaluation.oracle_coverage == pytest.approx(half.height / test.height)
    assert "oracle" in with_truth.evaluation.test


def test_the_record_names_the_truth_as_structured_tags(
    plan: TrainingPlan, data: TrainingData, tuned: TuneResult, tmp_path: Path
) -> None:
    fitted, baselines = _fitted_parts(plan, data, tuned)
    evaluated = evaluate_models(plan, data, fitted.model, baselines)
    truth = resolve_truth(_truth(tmp_path, data), known_extracts={EXTRACT}, label_is_any_case=True)
    assert truth.truth is not None
    inputs = RunInputs(plan, data, tuned, fitted, baselines, evaluated, truth, "abc123")
    record = build_run_record(inputs)
    assert record.tags[TRUTH_MANIFEST_TAG] == str(tmp_path.resolve() / TRUTH_MANIFEST)
    assert record.tags[TRUTH_DIGEST_TAG] == truth.truth.manifest.labels.sha256
    assert record.tags[TRUTH_NOTE_TAG] == f"oracle from {tmp_path.resolve()}"
    assert record.tags["riskcast.git_commit"] == "abc123"
    assert record.params["trials"] == 1 and record.run_name.endswith(str(plan.split.test[-1]))
    assert set(record.datasets) == {"tune", "calibrate", "test"}
    assert "model_card.md" in record.text_artifacts and "roc" in record.figures
    none = replace(inputs, truth=TruthChoice(None, "no truth folder given"))
    tags = build_run_record(none).tags
    assert TRUTH_MANIFEST_TAG not in tags and tags[TRUTH_NOTE_TAG] == "no truth folder given"


# ---- the truth manifest --------------------------------------------------------------------


def _truth(folder: Path, data: TrainingData, p: float = 0.25) -> Path:
    """A hand-made truth (as any tool could write it) for the data's test snapshot."""
    test = data.dataset.frame.filter(pl.col("as_of") == data.dataset.frame["as_of"].max())
    labels = test.select("person_id", "as_of").with_columns(
        pl.lit(365, dtype=pl.Int32).alias("horizon_days"), pl.lit(p).alias("p_true")
    )
    folder.mkdir(parents=True, exist_ok=True)
    labels.write_parquet(folder / "labels.parquet")
    manifest = TruthManifest(
        extract_id=EXTRACT,
        extracted_at=datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC),
        producer="tests",
        horizon_days=[365],
        as_of=[test["as_of"][0]],
        labels=TruthFile(
            file="labels.parquet", sha256=sha256_file(folder / "labels.parquet"), rows=test.height
        ),
    )
    return write_truth_manifest(folder, manifest)


def test_truth_is_used_only_when_it_fits(tmp_path: Path, data: TrainingData) -> None:
    manifest = _truth(tmp_path / "t", data)
    assert resolve_truth(None, known_extracts={EXTRACT}, label_is_any_case=True).truth is None
    empty = resolve_truth(tmp_path, known_extracts={EXTRACT}, label_is_any_case=True)
    assert empty.truth is None and "no truth manifest" in empty.note
    other = resolve_truth(manifest, known_extracts={"other"}, label_is_any_case=True)
    assert other.truth is None and f"truth of {EXTRACT}" in other.note
    narrow = resolve_truth(manifest, known_extracts={EXTRACT}, label_is_any_case=False)
    assert narrow.truth is None and "narrower" in narrow.note
    by_folder = resolve_truth(manifest.parent, known_extracts={EXTRACT}, label_is_any_case=True)
    by_file = resolve_truth(manifest, known_extracts={EXTRACT}, label_is_any_case=True)
    assert by_folder == by_file and by_file.truth is not None
    assert by_file.truth.manifest_path == manifest.resolve()


def test_a_changed_truth_is_refused(tmp_path: Path, data: TrainingData) -> None:
    manifest = _truth(tmp_path, data)
    pl.DataFrame({"person_id": ["x"]}).write_parquet(tmp_path / "labels.parquet")
    with pytest.raises(InputError, match="SHA-256"):
        resolve_truth(manifest, known_extracts={EXTRACT}, label_is_any_case=True)


def test_the_manifest_is_versioned_and_strict(tmp_path: Path, data: TrainingData) -> None:
    manifest = _truth(tmp_path, data)
    parsed = read_truth_manifest(tmp_path)
    assert parsed == read_truth_manifest(manifest) and parsed.schema_version == 1
    assert manifest.read_text("utf-8") == parsed.to_json()
    raw = json.loads(manifest.read_text("utf-8"))
    manifest.write_text(json.dumps(raw | {"schema_version": 2}), "utf-8")
    with pytest.raises(InputError, match="schema_version 2"):
        read_truth_manifest(manifest)
    manifest.write_text(json.dumps(raw | {"folder_layout": "x_truth"}), "utf-8")
    with pytest.raises(InputError, match="folder_layout"):
        read_truth_manifest(manifest)
    with pytest.raises(InputError, match="no truth manifest"):
        read_truth_manifest(tmp_path / "elsewhere")


def test_oracle_for_run_reads_the_recorded_truth(tmp_path: Path, data: TrainingData) -> None:
    manifest = _truth(tmp_path, data, p=0.4)
    choice = resolve_truth(manifest, known_extracts={EXTRACT}, label_is_any_case=True)
    tags = choice.tags()
    keys = data.dataset.frame.select("person_id", "as_of")
    p = oracle_for_run(tags, keys, 365)
    assert p is not None and p.shape == (keys.height,)
    last = (keys["as_of"] == keys["as_of"].max()).to_numpy()
    assert np.all(p[last] == 0.4) and np.isnan(p[~last]).all()
    assert np.isnan(oracle_for_run(tags, keys, 730)).all()  # type: ignore[arg-type]
    assert oracle_for_run({TRUTH_NOTE_TAG: f"oracle from {tmp_path}"}, keys, 365) is None
    _truth(tmp_path, data, p=0.1)  # the truth is replaced by another one
    with pytest.raises(InputError, match="the run recorded"):
        oracle_for_run(tags, keys, 365)
    (tmp_path / TRUTH_MANIFEST).unlink()
    assert oracle_for_run(tags, keys, 365) is None


def test_the_simulator_hands_over_its_truth_by_manifest(tmp_path: Path) -> None:
    from features.simulator import simulate

    result = simulate(
        tmp_path / "d1",
        persons=200,
        seed=5,
        start=date(2016, 1, 1),
        extracted_at=date(2025, 12, 31),
        as_of=[date(2023, 12, 31), date(2024, 12, 31)],
    )
    manifest = read_truth_manifest(result.truth_manifest)
    assert manifest.extract_id == result.extract_id
    assert manifest.horizon_days == [365]
    assert manifest.as_of == [date(2023, 12, 31), date(2024, 12, 31)]
    assert manifest.labels.sha256 == sha256_file(result.truth / manifest.labels.file)
    assert manifest.labels.rows == 400
    assert {"persons", "offences", "expected-ingest", "simulation"} <= set(manifest.files)
    for entry in manifest.files.values():
        assert entry.sha256 == sha256_file(result.truth / entry.file)
    choice = resolve_truth(
        result.truth_manifest, known_extracts={result.extract_id}, label_is_any_case=True
    )
    assert choice.truth is not None
