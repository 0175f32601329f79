"""MLflow tracking and registry (the edge where runs, artifacts and versions are written).

Embedded default: a SQLite backend ``sqlite:///$RISKCAST_HOME/mlflow.db`` with artifacts under
``$RISKCAST_HOME/mlartifacts``; ``MLFLOW_TRACKING_URI`` overrides (a tracking server, or a
database URL such as ``postgresql+psycopg://...``). Nothing is set at import time: the URI is
set for the duration of `tracking_session` and restored afterwards.

A training run is registered as a new version of the model name with the alias ``challenger``
(`riskcast.names.CHALLENGER`); this module never touches ``champion`` (the fairness gate moves
it). ``MLFLOW_TRACKING_URI`` is read through the kernel settings (`riskcast.settings`); only
`tracking_session` touches the environment, because MLflow itself keeps the URI there.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import polars as pl
from matplotlib.figure import Figure
from mlflow import MlflowClient

from riskcast.db import masked, url_hint
from riskcast.errors import ConfigError
from riskcast.names import CHALLENGER
from riskcast.settings import read_settings

MODEL_ARTIFACT = "model"

PICKLE_NOTE = (
    "the model is stored as an MLflow pyfunc, serialised with cloudpickle (MLflow warns about "
    "that): load versions only from this registry"
)
"""One line in place of MLflow's pickle warning (shown by `riskcast train`)."""

# MLflow's notices that tell a riskcast user nothing they can act on (see `quiet_mlflow`)
_IGNORED_WARNINGS = (
    r"The specified dataset source can be interpreted in multiple ways",  # two "local" sources
)
_PICKLE_WARNING = "Passing a Python object as `python_model`"


class _DropPickleWarning(logging.Filter):
    """Drops MLflow's cloudpickle warning (replaced by `PICKLE_NOTE`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _PICKLE_WARNING not in record.getMessage()


def tracking_uri(home: Path) -> str:
    """``MLFLOW_TRACKING_URI`` if set (read now: a session may have just set it), else the
    SQLite file under ``home``; a ``postgres://`` URI is a `ConfigError` with the URI to write."""
    configured = read_settings().mlflow_tracking_uri
    if configured and url_hint(configured):  # MLflow would refuse it with a traceback
        hint = url_hint(configured)
        raise ConfigError(f"MLFLOW_TRACKING_URI {masked(configured)!r}: MLflow cannot use it{hint}")
    if configured:
        return configured
    return f"sqlite:///{(Path(home) / 'mlflow.db').resolve()}"


def artifact_root(home: Path) -> str:
    return (Path(home) / "mlartifacts").resolve().as_uri()


def mlflow_executable() -> str:
    """``mlflow`` when that is the one beside this Python (an activated venv), else the path of
    the one beside it (after `make demo`, without activating), so the command runs as printed."""
    beside = Path(sys.executable).parent / "mlflow"
    found = shutil.which("mlflow")
    if not beside.exists() or (found and Path(found).resolve() == beside.resolve()):
        return "mlflow"
    return str(beside)


def ui_command(uri: str, home: Path) -> str:
    """The command that shows these runs in the MLflow UI (`riskcast train` and the demo print
    this same line)."""
    if uri.startswith(("http://", "https://")):
        return f"open {uri}"
    return (
        f"{mlflow_executable()} ui --backend-store-uri {uri} "
        f"--default-artifact-root {artifact_root(home)}"
    )


@contextlib.contextmanager
def quiet_mlflow() -> Iterator[None]:
    """MLflow's INFO chatter (creating tables, validating the example), its dataset-source
    notice and its pickle warning are not shown (its type-hint notice is avoided in
    `training.pyfunc`): the CLI prints what a run did itself, and `PICKLE_NOTE` says what the
    pickle warning meant. Other warnings still show; the logger's level and filter are restored."""
    logger = logging.getLogger("mlflow")
    level = logger.level
    pickle_filter = _DropPickleWarning()
    logger.setLevel(logging.WARNING)
    pyfunc_logger = logging.getLogger("mlflow.pyfunc")
    pyfunc_logger.addFilter(pickle_filter)
    try:
        with warnings.catch_warnings():
            for message in _IGNORED_WARNINGS:
                warnings.filterwarnings("ignore", message=message, category=UserWarning)
            yield
    finally:
        logger.setLevel(level)
        pyfunc_logger.removeFilter(pickle_filter)


@contextlib.contextmanager
def tracking_session(uri: str) -> Iterator[MlflowClient]:
    """Point MLflow (tracking and registry) at ``uri`` while the block runs, then restore."""
    quiet = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", quiet)}
    os.environ[quiet] = "false"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield MlflowClient(tracking_uri=uri, registry_uri=uri)
    finally:  # MLflow keeps the URIs in globals *and* the environment: restore both
        mlflow.set_tracking_uri(saved["MLFLOW_TRACKING_URI"])  # type: ignore[arg-type]
        mlflow.set_registry_uri(saved["MLFLOW_REGISTRY_URI"])  # type: ignore[arg-type]
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def ensure_experiment(client: MlflowClient, name: str, home: Path, uri: str) -> str:
    """The experiment's id; created with artifacts under ``home`` unless a server decides."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = None if uri.startswith(("http://", "https://")) else artifact_root(home)
    return str(client.create_experiment(name, artifact_location=location))


def git_commit(repo: Path | None = None) -> str:
    """The code version: ``<sha>`` (``-dirty`` when the tree has changes), or ``unknown``."""
    cwd = repo or Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


@dataclass
class RunRecord:
    """Everything a training run logs (assembled by the pipeline)."""

    run_name: str
    params: dict[str, Any]
    tags: dict[str, str]
    metrics: dict[str, float]
    config: dict[str, Any]
    datasets: dict[str, tuple[pl.DataFrame, str]]  # context -> (frame, digest)
    figures: dict[str, Figure]
    json_artifacts: dict[str, Any]
    text_artifacts: dict[str, str]
    model_dir: Path
    input_example: pl.DataFrame
    model_name: str
    dataset_source: str = ""
    description: str = ""  # the registered version's description (the model card)


@dataclass(frozen=True)
class Logged:
    run_id: str
    experiment_id: str
    model_uri: str
    model_version: str


def pip_requirements(*names: str) -> list[str]:
    """The installed versions of ``names``, pinned (what a logged model needs to load)."""
    from importlib.metadata import version

    return [f"{n}=={version(n)}" for n in names]


def log_contents(
    *,
    params: dict[str, Any],
    metrics: dict[str, float],
    figures: dict[str, Figure],
    json_artifacts: dict[str, Any],
    texts: dict[str, str],
) -> None:
    """Log into the active run what every training run keeps: parameters (as shortened text),
    metrics, figures under ``plots/``, JSON and text artifacts."""
    mlflow.log_params({k: param_text(v) for k, v in params.items()})
    mlflow.log_metrics(metrics)
    for name, fig in figures.items():
        mlflow.log_figure(fig, f"plots/{name}.png")
    for name, payload in json_artifacts.items():
        mlflow.log_dict(payload, name)
    for name, text in texts.items():
        mlflow.log_text(text, name)


DESCRIPTION_LIMIT = 5000
"""Characters of a model version's description in MLflow's SQL registry (varchar(5000))."""
_CUT_NOTE = "\n\n… (cut to fit the registry; the whole card is the run's artifact `model_card.md`)"


def fit_description(text: str, limit: int = DESCRIPTION_LIMIT) -> str:
    """``text`` if it fits the registry, else its first whole lines and a note saying where the
    whole card is, together at most ``limit`` characters."""
    if len(text) <= limit:
        return text
    room = limit - len(_CUT_NOTE)
    head = text[:room]
    cut = head.rfind("\n")
    return (head[:cut] if cut > 0 else head).rstrip() + _CUT_NOTE


def name_challenger(
    client: MlflowClient, model_name: str, version: str, *, description: str, tags: dict[str, str]
) -> None:
    """Describe a newly registered version (the registry's page shows ``description``, the
    model card), tag it like its run and give it the alias challenger (never champion).

    MLflow's SQL registry holds at most `DESCRIPTION_LIMIT` characters (PostgreSQL enforces
    it, SQLite does not): a longer card is cut at a line and says where the whole card is."""
    if description:
        client.update_model_version(model_name, version, fit_description(description))
    for key, value in tags.items():
        client.set_model_version_tag(model_name, version, key, value)
    client.set_registered_model_alias(model_name, CHALLENGER, version)


def model_version(client: MlflowClient, name: str, version_or_alias: str) -> Any:
    """The registered version ``version_or_alias`` names: a number, or an alias (``@`` optional)."""
    if version_or_alias.isdigit():
        return client.get_model_version(name, version_or_alias)
    return client.get_model_version_by_alias(name, version_or_alias.lstrip("@"))


def download_model_artifacts(name: str, version: str, *, prefix: str) -> Path:
    """The ``artifacts`` folder of a registered version's pyfunc model, in a new temporary
    folder (inside a `tracking_session`)."""
    target = Path(tempfile.mkdtemp(prefix=prefix))
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{name}/{version}", dst_path=str(target)
    )
    return Path(local) / "artifacts"


def log_training_run(
    record: RunRecord, *, home: Path, experiment: str, uri: str | None = None
) -> Logged:
    """Log one run (params, tags, metrics, datasets, figures, artifacts, the model), register
    it as a new version of ``record.model_name`` and give that version the alias challenger."""
    import mlflow.pyfunc
    from mlflow.data.polars_dataset import from_polars
    from mlflow.models import infer_signature

    from training.model import ARTIFACT_KEY, RiskModel
    from training.pyfunc import RiskModelPyfunc

    uri = uri or tracking_uri(home)
    with quiet_mlflow(), tracking_session(uri) as client:  # quiet before the store is opened
        experiment_id = ensure_experiment(client, experiment, home, uri)
        with mlflow.start_run(experiment_id=experiment_id, run_name=record.run_name) as run:
            mlflow.set_tags(record.tags)
            mlflow.log_dict(record.config, "config/training.json")
            for context, (frame, digest) in record.datasets.items():
                dataset = from_polars(
                    frame.with_columns(pl.col("as_of").cast(pl.Datetime("us"))),
                    source=record.dataset_source or None,
                    targets="label",
                    name=f"{context}-{digest}",
                    digest=digest,
                )
                mlflow.log_input(dataset, context=context)
            log_contents(
                params=record.params,
                metrics=record.metrics,
                figures=record.figures,
                json_artifacts=record.json_artifacts,
                texts=record.text_artifacts,
            )
            example = record.input_example.select(pl.all().cast(pl.Float64)).to_pandas()
            model = RiskModel.load(record.model_dir)
            signature = infer_signature(example, model.predict(record.input_example).to_pandas())
            info = mlflow.pyfunc.log_model(
                name=MODEL_ARTIFACT,
                python_model=RiskModelPyfunc(),
                artifacts={ARTIFACT_KEY: str(record.model_dir)},
                signature=signature,
                input_example=example,
                pip_requirements=pip_requirements(
                    "lightgbm", "polars", "numpy", "pandas", "scikit-learn", "mlflow", "pyarrow"
                ),
                registered_model_name=record.model_name,
            )
            run_id = run.info.run_id
        version = str(info.registered_model_version)
        name_challenger(
            client, record.model_name, version, description=record.description, tags=record.tags
        )
    return Logged(run_id, experiment_id, info.model_uri, version)


def param_text(value: Any) -> str:
    """A parameter as MLflow keeps it: text of at most 500 characters."""
    text = str(value)
    return text if len(text) <= 500 else text[:497] + "..."


def load_registered(name: str, version_or_alias: str, *, home: Path, uri: str | None = None) -> Any:
    """The registered pyfunc model (``version`` number or ``@alias``)."""
    import mlflow.pyfunc

    uri = uri or tracking_uri(home)
    ref = version_or_alias if version_or_alias.isdigit() else f"@{version_or_alias.lstrip('@')}"
    sep = "/" if ref.isdigit() else ""
    with tracking_session(uri):
        return mlflow.pyfunc.load_model(f"models:/{name}{sep}{ref}")


def download_risk_model(
    name: str, version_or_alias: str, *, home: Path, uri: str | None = None
) -> Any:
    """The registered `RiskModel` itself (not the pyfunc wrapper), e.g. for serving."""
    from training.model import ARTIFACT_KEY, RiskModel

    uri = uri or tracking_uri(home)
    with tracking_session(uri) as client:
        mv = model_version(client, name, version_or_alias)
        artifacts = download_model_artifacts(name, mv.version, prefix="riskcast-model-")
    return RiskModel.load(artifacts / ARTIFACT_KEY)
