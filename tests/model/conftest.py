"""One tiny end-to-end training run shared by the model-behaviour tests (through the CLI)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from serving.cli import build_app
from tests.service_helpers import copy_home
from tests.training_helpers import tiny_delivery, write_config
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
    import os
    import time

    root = tmp_path_factory.mktemp("train")
    delivery, home = tiny_delivery(root)
    config = write_config(root / "training.yaml", truth_dir=str(root / "d1_truth"))
    saved = {k: os.environ.get(k) for k in ("RISKCAST_HOME", "MLFLOW_TRACKING_URI")}
    os.environ["RISKCAST_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    from riskcast.settings import get_settings

    get_settings.cache_clear()
    try:
        started = time.perf_counter()
        result = CliRunner().invoke(build_app(), ["train", "--config", str(config)])
        seconds = time.perf_counter() - started
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output + repr(result.exception)
    match = re.search(r"model version: recidivism-risk v(\d+)", result.output)
    assert match, result.output
    version = match.group(1)
    uri = f"sqlite:///{(home / 'mlflow.db').resolve()}"
    model = download_risk_model("recidivism-risk", version, home=home, uri=uri)
    return Trained(home, delivery, config, result.output, version, seconds, model)


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
