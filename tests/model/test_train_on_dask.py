"""`riskcast train` with ``RISKCAST_DASK_SCHEDULER=local`` (a LocalCluster of 2 process
workers started by the command, as a user runs it) on the tiny home the other model tests
train single-machine (`trained`): the same dataset, the tuning trials run on the workers with
the single machine's parameters and values, the final fit by ``lightgbm.dask``; the model's
out-of-time AUC is within the bootstrap sd of the single machine's, and the run is recorded
like a normal run (the same params, metrics, artifacts and datasets; a ``challenger``
version), plus tags that say where it was computed."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from sklearn.metrics import roc_auc_score

from fairness.audit import load_version, rebuild_test_frame
from riskcast.names import CHALLENGER
from tests.model.conftest import Trained
from tests.training_helpers import train_by_cli

MODEL = "recidivism-risk"


@dataclass
class OnDask:
    home: Path
    output: str
    version: str


def _client(home: Path) -> MlflowClient:
    uri = f"sqlite:///{(home / 'mlflow.db').resolve()}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _train_on_dask(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> OnDask:
    """The trained home's store in a fresh home (no MLflow, no study: nothing to resume),
    trained by the CLI with the Dask switch set."""
    home = tmp_path_factory.mktemp("dask-train") / "home"
    shutil.copytree(trained.home / "store", home / "store")
    env = {"RISKCAST_HOME": str(home), "RISKCAST_DASK_SCHEDULER": "local"}
    output, version = train_by_cli(trained.config, {**env, "MLFLOW_TRACKING_URI": None}, MODEL)
    return OnDask(home, output, version)


def _run(home: Path, version: str) -> tuple[MlflowClient, str]:
    client = _client(home)
    return client, str(client.get_model_version(MODEL, version).run_id)


def _summary(client: MlflowClient, run_id: str) -> dict[str, object]:
    local = client.download_artifacts(run_id, "optuna/study_summary.json")
    return json.loads(Path(local).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_train_on_a_local_cluster_matches_the_single_machine(
    trained: Trained, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """One test (one cluster training: pytest-xdist would repeat a shared fixture per process
    for every test it sends elsewhere)."""
    on_dask = _train_on_dask(trained, tmp_path_factory)
    _trials_ran_on_the_workers_and_the_final_fit_on_lightgbm_dask(trained, on_dask)
    _the_cluster_model_is_within_the_bootstrap_sd_of_the_single_machine(trained, on_dask)
    _the_run_is_recorded_like_a_single_machine_run(trained, on_dask)


def _trials_ran_on_the_workers_and_the_final_fit_on_lightgbm_dask(
    trained: Trained, on_dask: OnDask
) -> None:
    client, run_id = _run(on_dask.home, on_dask.version)
    tags = client.get_run(run_id).data.tags
    assert tags["riskcast.compute"] == "dask" and tags["riskcast.dask_workers"] == "2"
    spread = _summary(client, run_id)
    trials = spread["trials"]
    assert isinstance(trials, list) and len(trials) == 2
    assert all(str(t["dask_worker"]).startswith("tcp://") for t in trials)
    assert len({t["dask_worker"] for t in trials}) == 2  # one trial per worker
    single_client, single_run = _run(trained.home, trained.version)
    alone = _summary(single_client, single_run)
    alone_trials = alone["trials"]
    assert isinstance(alone_trials, list)
    # the same folds, seeds and objective: the single machine's trials, parameter for parameter
    assert [t["params"] for t in trials] == [t["params"] for t in alone_trials]
    # ...and the same value wherever both ran the trial to its end. A trial may be pruned on
    # one side only: run two at a time, whichever finishes first is the pruner's evidence
    # for the other (run one after the other, trial 0 never is), so a pruned trial's
    # intermediate value depends on timing, not on the folds.
    both = [
        (spread_trial["value"], alone_trial["value"])
        for spread_trial, alone_trial in zip(trials, alone_trials, strict=True)
        if spread_trial["state"] == alone_trial["state"] == "COMPLETE"
    ]
    assert both, "no trial completed on both sides"
    assert [a for a, _ in both] == pytest.approx([b for _, b in both], rel=1e-9)
    rounds = client.get_run(run_id).data.params["lgbm.num_boost_round"]
    assert tags["riskcast.final_fit"] == f"lightgbm.dask, {rounds} rounds"
    assert rounds == single_client.get_run(single_run).data.params["lgbm.num_boost_round"]


def _the_cluster_model_is_within_the_bootstrap_sd_of_the_single_machine(
    trained: Trained, on_dask: OnDask
) -> None:
    alone = load_version(MODEL, trained.version, home=trained.home)
    spread = load_version(MODEL, on_dask.version, home=on_dask.home)
    test, digest = rebuild_test_frame(alone, trained.home)
    assert rebuild_test_frame(spread, on_dask.home)[1] == digest  # the same test rows
    y = test["label"].to_numpy()
    p_alone = alone.model.predict(test)["probability"].to_numpy()
    p_spread = spread.model.predict(test)["probability"].to_numpy()
    assert not np.array_equal(p_alone, p_spread)  # a different fit (lightgbm.dask) indeed
    auc_alone, auc_spread = roc_auc_score(y, p_alone), roc_auc_score(y, p_spread)
    rng = np.random.default_rng(0)
    boot = []
    for _ in range(300):
        idx = rng.integers(0, y.size, y.size)
        if 0 < y[idx].sum() < y.size:
            boot.append(roc_auc_score(y[idx], p_alone[idx]))
    sd = float(np.std(boot, ddof=1))
    assert auc_alone > 0.65
    assert abs(auc_spread - auc_alone) < sd, (auc_alone, auc_spread, sd)
    client, run_id = _run(on_dask.home, on_dask.version)  # what the run logged is this AUC
    assert client.get_run(run_id).data.metrics["test.model.auc"] == pytest.approx(auc_spread)


def _the_run_is_recorded_like_a_single_machine_run(trained: Trained, on_dask: OnDask) -> None:
    client, run_id = _run(on_dask.home, on_dask.version)
    single_client, single_run = _run(trained.home, trained.version)
    run, alone = client.get_run(run_id), single_client.get_run(single_run)
    assert set(run.data.params) == set(alone.data.params)
    assert set(run.data.metrics) == set(alone.data.metrics)
    assert set(alone.data.tags) <= set(run.data.tags)
    extra = {k for k in run.data.tags if k not in alone.data.tags and k.startswith("riskcast.")}
    assert extra == {"riskcast.compute", "riskcast.dask_workers", "riskcast.final_fit"}
    for tag in ("riskcast.dataset_digest", "riskcast.feature_spec_hash", "riskcast.scope"):
        assert run.data.tags[tag] == alone.data.tags[tag]  # the cluster built the same dataset

    def artifacts(c: MlflowClient, rid: str) -> set[str]:
        """What training logged: an audit of the shared single-machine run by another test
        adds its report under ``fairness/`` later, in whatever order the tests run."""
        top = {a.path for a in c.list_artifacts(rid)} - {"fairness"}
        return top | {a.path for d in ("plots", "evaluation") for a in c.list_artifacts(rid, d)}

    assert artifacts(client, run_id) == artifacts(single_client, single_run)
    contexts = {i.tags[0].value for i in run.inputs.dataset_inputs}
    assert contexts == {"tune", "calibrate", "test"}
    model = client.get_registered_model(MODEL)
    assert str(model.aliases.get(CHALLENGER)) == on_dask.version
    card = client.get_model_version(MODEL, on_dask.version).description
    assert "Intended use" in card
