"""`riskcast train` on a tiny simulated delivery: registered, aliased, logged, fast."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
from mlflow import MlflowClient

from riskcast.names import CHALLENGER, CHAMPION
from tests.model.conftest import Trained
from training.dataset import dataset_digest
from training.tracking import load_registered


def _client(trained: Trained) -> MlflowClient:
    uri = f"sqlite:///{(trained.home / 'mlflow.db').resolve()}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_train_prints_where_to_look_and_finishes_quickly(trained: Trained) -> None:
    out = trained.output
    assert "run id:" in out and "mlflow ui --backend-store-uri" in out
    assert "oracle" in out and "logistic" in out and "points" in out
    assert trained.seconds < 60


def test_version_is_challenger_never_champion(trained: Trained) -> None:
    client = _client(trained)
    model = client.get_registered_model("recidivism-risk")
    assert str(model.aliases.get(CHALLENGER)) == trained.version
    assert CHAMPION not in model.aliases


def test_run_logs_metrics_card_plots_study_and_datasets(trained: Trained) -> None:
    client = _client(trained)
    mv = client.get_model_version("recidivism-risk", trained.version)
    run = client.get_run(mv.run_id)
    metrics = run.data.metrics
    for scorer in ("model", "logistic", "points", "oracle"):
        assert f"test.{scorer}.auc" in metrics
        assert f"test.{scorer}.ece" in metrics
    assert "test.auc_diff.logistic.sd" in metrics and "test.gap_to_oracle.auc" in metrics
    assert any(k.startswith("period.2024-12-31.model.") for k in metrics)
    tags = run.data.tags
    assert tags["riskcast.feature_spec_hash"] and tags["riskcast.git_commit"]
    paths = {a.path for a in client.list_artifacts(mv.run_id)}
    assert {"model_card.md", "plots", "optuna", "evaluation", "config"} <= paths
    plots = {a.path for a in client.list_artifacts(mv.run_id, "plots")}
    assert {"plots/calibration.png", "plots/roc.png", "plots/capture.png"} <= plots
    assert "plots/shap_by_domain.png" in plots
    local = client.download_artifacts(mv.run_id, "optuna/study_summary.json")
    summary = json.loads(Path(local).read_text(encoding="utf-8"))
    assert summary["n_trials"] >= 2
    inputs = run.inputs.dataset_inputs
    contexts = {i.tags[0].value for i in inputs}
    assert contexts == {"tune", "calibrate", "test"}
    card = Path(client.download_artifacts(mv.run_id, "model_card.md")).read_text("utf-8")
    for heading in ("Intended use", "Not for use", "Calibration", "Known limitations"):
        assert heading in card


def test_registered_version_loads_back_and_scores_identically(trained: Trained) -> None:
    frame = pl.DataFrame(
        {n: np.linspace(0, 3, 50) for n in trained.model.feature_names}
    ).with_columns(pl.lit("P1").alias("person_id"))
    direct = trained.model.predict(frame)
    uri = f"sqlite:///{(trained.home / 'mlflow.db').resolve()}"
    pyfunc = load_registered("recidivism-risk", "challenger", home=trained.home, uri=uri)
    via_mlflow = pyfunc.predict(frame.select(trained.model.feature_names).to_pandas())
    np.testing.assert_array_equal(direct["probability"].to_numpy(), via_mlflow["probability"])
    np.testing.assert_array_equal(direct["raw_score"].to_numpy(), via_mlflow["raw_score"])
    assert dataset_digest(direct.drop("person_id")) == dataset_digest(pl.from_pandas(via_mlflow))
