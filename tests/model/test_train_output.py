"""What `riskcast train` prints when its output is not a terminal (a log, a pipe, CI): no raw
colour codes, no MLflow notices a user cannot act on (the pickle warning becomes one line),
the `mlflow ui` command whole on one line; and the model card is the version's description.

Run as a user runs it (a subprocess, with ``--home`` instead of ``RISKCAST_HOME``), since the
notices come from imports and MLflow's loggers that an in-process runner would hide."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mlflow import MlflowClient

from tests.training_helpers import tiny_delivery, write_config
from training.tracking import PICKLE_NOTE, tracking_uri, ui_command


def test_train_output_is_plain_and_the_card_is_the_description(tmp_path: Path) -> None:
    _, home = tiny_delivery(tmp_path)
    config = write_config(tmp_path / "training.yaml", truth_dir=str(tmp_path / "d1_truth"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RISKCAST_", "MLFLOW_"))}
    env["COLUMNS"] = "80"  # rich would wrap long lines at this width
    riskcast = str(Path(sys.executable).parent / "riskcast")
    result = subprocess.run(
        [riskcast, "train", "--config", str(config), "--home", str(home)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "\x1b[" not in output, "raw ANSI codes in a non-terminal output"
    for notice in ("Warning", "CloudPickle", "INFO mlflow", "Creating initial MLflow"):
        assert notice not in output, f"{notice!r} in\n{output}"
    assert f"note: {PICKLE_NOTE}" in result.stdout
    uri = f"sqlite:///{(home / 'mlflow.db').resolve()}"
    expected = ui_command(uri, home)
    assert f"look:          {expected}\n" in result.stdout  # whole, on one line

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = client.get_model_version_by_alias("recidivism-risk", "challenger")
    card = Path(client.download_artifacts(str(version.run_id), "model_card.md")).read_text(
        encoding="utf-8"
    )
    assert version.description == card
    assert tracking_uri(home).startswith("sqlite:///")  # the test ran without MLFLOW_TRACKING_URI
