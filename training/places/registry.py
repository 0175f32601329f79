"""The MLflow edge of the places path: log a run, register a ``street-crime`` version with the
alias ``challenger``, and load a registered version back.

It reuses the person path's session handling and logging (`training.tracking`: the tracking
URI under ``$RISKCAST_HOME``, `tracking_session`, `quiet_mlflow`, `ensure_experiment`,
`log_contents`, `name_challenger`, `model_version`); only the model flavour differs
(`training.places.pyfunc`), so `training.tracking.log_training_run`, which is written for the
person model, is not called. Like it, this never touches ``champion``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import polars as pl
from matplotlib.figure import Figure

from riskcast.errors import NotFoundError
from training.places.model import ARTIFACT_KEY, PlacesModel
from training.tracking import (
    download_model_artifacts,
    ensure_experiment,
    log_contents,
    model_version,
    name_challenger,
    pip_requirements,
    quiet_mlflow,
    tracking_session,
    tracking_uri,
)

MODEL_ARTIFACT = "model"
TEST_PREDICTIONS = "places/test_predictions.parquet"
"""The artifact the places audit reads (docs/PLACES.md, "Test predictions")."""
MODEL_CARD = "model_card.md"


@dataclass
class PlacesRunRecord:
    run_name: str
    model_name: str
    params: dict[str, Any]
    tags: dict[str, str]
    metrics: dict[str, float]
    figures: dict[str, Figure]
    json_artifacts: dict[str, Any]
    frames: dict[str, pl.DataFrame]  # artifact path -> Parquet
    model_card: str
    input_example: pl.DataFrame
    extra_text: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PlacesLogged:
    run_id: str
    experiment_id: str
    model_version: str
    model_uri: str


def log_places_run(
    record: PlacesRunRecord,
    model: PlacesModel,
    *,
    home: Path,
    experiment: str,
    uri: str | None = None,
) -> PlacesLogged:
    """Log ``record`` and ``model`` as one run and register it (alias challenger)."""
    import mlflow.pyfunc

    from training.places.pyfunc import PlacesModelPyfunc

    uri = uri or tracking_uri(home)
    with tempfile.TemporaryDirectory(prefix="riskcast-places-") as tmp:
        model_dir = model.save(Path(tmp) / ARTIFACT_KEY)
        (model_dir / MODEL_CARD).write_text(record.model_card, encoding="utf-8")
        with quiet_mlflow(), tracking_session(uri) as client:
            experiment_id = ensure_experiment(client, experiment, home, uri)
            with mlflow.start_run(experiment_id=experiment_id, run_name=record.run_name) as run:
                mlflow.set_tags(record.tags)
                log_contents(
                    params=record.params,
                    metrics=record.metrics,
                    figures=record.figures,
                    json_artifacts=record.json_artifacts,
                    texts={MODEL_CARD: record.model_card, **record.extra_text},
                )
                for rel, frame in record.frames.items():
                    local = Path(tmp) / "frames" / rel
                    local.parent.mkdir(parents=True, exist_ok=True)
                    frame.write_parquet(local)
                    mlflow.log_artifact(str(local), str(Path(rel).parent))
                example = record.input_example.select(pl.all().cast(pl.Float64)).to_pandas()
                info = mlflow.pyfunc.log_model(
                    name=MODEL_ARTIFACT,
                    python_model=PlacesModelPyfunc(),
                    artifacts={ARTIFACT_KEY: str(model_dir)},
                    input_example=example,
                    pip_requirements=pip_requirements(
                        "lightgbm", "polars", "numpy", "pandas", "mlflow", "pyarrow", "h3", "scipy"
                    ),
                    registered_model_name=record.model_name,
                )
                run_id = run.info.run_id
            version = str(info.registered_model_version)
            name_challenger(
                client, record.model_name, version, description=record.model_card,
                tags=record.tags,
            )  # fmt: skip
    return PlacesLogged(run_id, experiment_id, version, info.model_uri)


@dataclass(frozen=True)
class LoadedVersion:
    model: PlacesModel
    name: str
    version: str
    run_id: str
    tags: dict[str, str]


def load_places_model(
    name: str, version_or_alias: str, *, home: Path, uri: str | None = None
) -> LoadedVersion:
    """A registered version (a number, or an alias such as ``champion``) read back as a
    `PlacesModel`; `NotFoundError` names the model and what was asked for."""
    from mlflow.exceptions import MlflowException

    uri = uri or tracking_uri(home)
    with quiet_mlflow(), tracking_session(uri) as client:
        try:
            mv = model_version(client, name, version_or_alias)
        except MlflowException as exc:
            raise NotFoundError(
                f"model {name!r} has no {'version' if version_or_alias.isdigit() else 'alias'} "
                f"{version_or_alias!r} in {uri} (train one with `riskcast places train`)"
            ) from exc
        artifacts = download_model_artifacts(name, mv.version, prefix="riskcast-places-model-")
        tags = dict(mv.tags or {})
    model = PlacesModel.load(artifacts / ARTIFACT_KEY)
    return LoadedVersion(model, name, str(mv.version), str(mv.run_id or ""), tags)


def download_run_artifact(run_id: str, path: str, *, home: Path, uri: str | None = None) -> Path:
    """A run's artifact (e.g. `TEST_PREDICTIONS`) as a local file."""
    uri = uri or tracking_uri(home)
    with quiet_mlflow(), tracking_session(uri):
        target = Path(tempfile.mkdtemp(prefix="riskcast-places-artifact-"))
        return Path(
            mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=path, dst_path=str(target)
            )
        )
