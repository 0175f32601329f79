"""MLflow tracking and registry on a PostgreSQL backend: a fresh database, a tiny training run
registered as challenger, loaded back; the database is dropped at the end."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest
from mlflow import MlflowClient

from riskcast.names import CHALLENGER
from tests.training_helpers import tiny_delivery, write_config
from training.pipeline import train
from training.tracking import download_risk_model

SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
pytestmark = pytest.mark.integration


@pytest.fixture
def mlflow_db() -> Iterator[str]:
    name = f"riskcast_mlflow_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(SERVER, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_training_run_registers_on_postgres(
    mlflow_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, home = tiny_delivery(tmp_path, persons=2000)
    config = write_config(tmp_path / "training.yaml", trials=2)
    (tmp_path / "labels.yaml").write_text(
        (Path(__file__).resolve().parents[2] / "configs" / "labels.yaml").read_text("utf-8"),
        encoding="utf-8",
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_db)
    result = train(home=home, config=config)
    assert result.tracking_uri == mlflow_db
    client = MlflowClient(tracking_uri=mlflow_db, registry_uri=mlflow_db)
    registered = client.get_registered_model("recidivism-risk")
    assert str(registered.aliases[CHALLENGER]) == result.model_version
    run = client.get_run(result.run_id)
    assert "test.model.auc" in run.data.metrics
    model = download_risk_model("recidivism-risk", "challenger", home=home, uri=mlflow_db)
    rows = __import__("polars").DataFrame({n: np.arange(5.0) for n in model.feature_names})
    assert model.predict(rows)["probability"].is_between(0, 1).all()
