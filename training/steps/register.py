"""Step ``register``: save the model, log the run to MLflow and register the version as
``challenger`` (the only step that writes; see `training.tracking`)."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from training.model import RiskModel
from training.tracking import Logged, RunRecord, log_training_run


def register_run(
    record: RunRecord,
    model: RiskModel,
    *,
    dataset_source: Path,
    home: Path,
    experiment: str,
    uri: str,
) -> Logged:
    """Save ``model`` (with its model card) to a temporary folder and log ``record`` with it;
    the model card is also the registered version's description (what MLflow's UI shows)."""
    with tempfile.TemporaryDirectory(prefix="riskcast-train-") as tmp:
        model_dir = model.save(Path(tmp) / "risk_model")
        card = record.text_artifacts["model_card.md"]
        (model_dir / "model_card.md").write_text(card)
        complete = dataclasses.replace(
            record,
            model_dir=model_dir,
            dataset_source=str(dataset_source.resolve()),
            description=card,  # also the MLflow version's description
        )
        return log_training_run(complete, home=home, experiment=experiment, uri=uri)
