"""One tiny end-to-end training run shared by the model-behaviour tests (through the CLI)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.service_helpers import copy_home
from tests.training_helpers import tiny_delivery, train_by_cli, write_config
from training.model import RiskModel
from training.tracking import download_risk_model


@dataclass
class Trained:
    home: Path
    delivery: Path
    config: Path
    output: str
    version: str
    seconds: float
    model: RiskModel


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    import time

    root = tmp_path_factory.mktemp("train")
    delivery, home = tiny_delivery(root)
    config = write_config(root / "training.yaml", truth_dir=str(root / "d1_truth"))
    started = time.perf_counter()
    env = {"RISKCAST_HOME": str(home), "MLFLOW_TRACKING_URI": None}
    output, version = train_by_cli(config, env)
    seconds = time.perf_counter() - started
    uri = f"sqlite:///{(home / 'mlflow.db').resolve()}"
    model = download_risk_model("recidivism-risk", version, home=home, uri=uri)
    return Trained(home, delivery, config, output, version, seconds, model)


def use_home_copy(trained: Trained, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A copy of the trained home made the current one (``RISKCAST_HOME``, no MLflow or database
    URL from the environment, settings cache cleared): aliases and the ledger change there, not
    in the shared home. The caller clears the settings cache again after its test."""
    from riskcast.settings import get_settings

    copy = tmp_path / "home"
    copy_home(trained.home, copy)
    monkeypatch.setenv("RISKCAST_HOME", str(copy))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("RISKCAST_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    return copy
