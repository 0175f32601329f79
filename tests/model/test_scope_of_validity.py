"""The service scores only the population a model was trained, calibrated and audited on.

One simulated delivery (outcomes known: extracted a year after the served as-of date), two
models trained through the real CLI: one on persons with a record (the default), one on
persons released within 12 months. Served through the real service state and score book.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from features.frames.builder import Population
from features.frames.definitions import load_spec
from features.frames.scope import (
    SCOPE_AGE,
    SCOPE_RECORD,
    PopulationScope,
    released_column,
    scope_columns,
)
from features.store.offline import OfflineStore
from serving.cli import build_app
from serving.services.scores import answer_ids
from serving.state import ServiceState, open_state
from tests.service_helpers import _env, settings_for
from tests.training_helpers import tiny_delivery, write_config
from training.labels import labels_for
from training.tracking import download_risk_model, tracking_session

AS_OF = date(2024, 12, 31)  # served date; the delivery knows the following 12 months
PERSONS = 100_000
MODEL = "recidivism-risk"


@dataclass
class World:
    home: Path
    record_version: str
    released_version: str
    scope: pl.DataFrame  # person_id, scope_* as of AS_OF
    labels: pl.DataFrame  # person_id, label (new case registered within 12 months)


def _train(home: Path, config: Path) -> str:
    result = CliRunner().invoke(build_app(), ["train", "--config", str(config)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    match = re.search(r"model version: recidivism-risk v(\d+)", result.output)
    assert match, result.output
    return match.group(1)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("scope")
    _, home = tiny_delivery(root, persons=PERSONS, seed=29)
    with _env(RISKCAST_HOME=str(home), MLFLOW_TRACKING_URI=None, RISKCAST_DATABASE_URL=None):
        record = _train(home, write_config(root / "record.yaml", num_threads=0))
        released = _train(
            home, write_config(root / "released.yaml", population="released", num_threads=0)
        )
        done = CliRunner().invoke(build_app(), ["features", "materialize", "--as-of", str(AS_OF)])
        assert done.exit_code == 0, done.output + repr(done.exception)
        assert "populations as of 2024-12-31: with_record" in done.output
    store = OfflineStore(home)
    scope = scope_columns(store, load_spec(), [AS_OF]).drop("as_of")
    keys = scope.select("person_id", pl.lit(AS_OF).alias("as_of")).lazy()
    from training.config import load_training_config

    label = load_training_config().label
    labels = labels_for(store, keys, label).collect().select("person_id", "label")
    return World(home, record, released, scope, labels)


def _promote(home: Path, version: str) -> None:
    with tracking_session(f"sqlite:///{(home / 'mlflow.db').resolve()}") as client:
        client.set_registered_model_alias(MODEL, "champion", version)


@pytest.fixture
def serving(world: World) -> Iterator[tuple[World, list[ServiceState]]]:
    opened: list[ServiceState] = []
    with _env(RISKCAST_HOME=str(world.home), MLFLOW_TRACKING_URI=None, RISKCAST_DATABASE_URL=None):
        yield world, opened
    for state in opened:
        state.close()


def _serve(world: World, version: str, opened: list[ServiceState]) -> ServiceState:
    _promote(world.home, version)
    state = open_state(settings_for(world.home))
    opened.append(state)
    assert state.model is not None, state.model_error
    assert state.model.version == version and state.book_keeper is not None
    book = state.book_keeper.wait(300)
    assert book is not None, state.book_keeper.status
    return state


def test_every_version_declares_its_population_in_metadata_and_card(world: World) -> None:
    uri = f"sqlite:///{(world.home / 'mlflow.db').resolve()}"
    model = download_risk_model(MODEL, world.record_version, home=world.home, uri=uri)
    assert model.scope == PopulationScope(population=Population.WITH_RECORD, min_age=14)
    assert set(model.metadata["snapshots"]) == {"tune", "calibrate", "test"}
    assert model.metadata["snapshots"]["test"] == ["2024-12-31"]
    released = download_risk_model(MODEL, world.released_version, home=world.home, uri=uri)
    assert released.scope == PopulationScope(
        population=Population.RELEASED, released_within_months=12, min_age=14
    )
    with tracking_session(uri) as client:
        mv = client.get_model_version(MODEL, world.record_version)
        tags = dict(mv.tags) | dict(client.get_run(str(mv.run_id)).data.tags)
    assert json.loads(tags["riskcast.scope"])["population"] == "with_record"


def test_served_set_is_the_champions_population_and_follows_the_champion(
    serving: tuple[World, list[ServiceState]],
) -> None:
    world, opened = serving
    adults = world.scope.filter(pl.col(SCOPE_AGE) >= 14)
    with_record = set(adults.filter(pl.col(SCOPE_RECORD))["person_id"].to_list())
    released = set(adults.filter(pl.col(released_column(12)))["person_id"].to_list())
    no_record = set(world.scope.filter(~pl.col(SCOPE_RECORD))["person_id"].to_list())
    assert with_record and released and no_record and with_record != released

    state = _serve(world, world.record_version, opened)
    book = state.book()
    assert book is not None
    assert set(book.person_ids.tolist()) == with_record
    assert book.outside == world.scope.height - len(with_record)
    asked = sorted(no_record)[:300]
    answers = answer_ids(state, state.model, None, asked)  # type: ignore[arg-type]
    assert not answers.scored and set(answers.outside) == set(asked)
    assert all("without a record" in why or "aged" in why for why in answers.outside.values())
    for region in ("AST", "ALA", "SHY", "KAR"):
        listed = set(book.person_ids[book.ranked(region, None)].tolist())
        assert not listed & no_record

    state = _serve(world, world.released_version, opened)
    book = state.book()
    assert book is not None
    assert set(book.person_ids.tolist()) == released


def test_calibration_in_the_large_on_the_served_population(
    serving: tuple[World, list[ServiceState]],
) -> None:
    """Mean predicted probability within 5 % of the observed rate on the served persons; the
    persons left out would have been scored several times too high."""
    world, opened = serving
    state = _serve(world, world.record_version, opened)
    book = state.book()
    assert book is not None and state.model is not None
    served = pl.DataFrame({"person_id": book.person_ids.astype(str), "p": book.probability})
    joined = served.join(world.labels, on="person_id", how="inner")
    assert joined.height == served.height > 3_000
    predicted, observed = float(joined["p"].mean()), float(joined["label"].mean())  # type: ignore[arg-type]
    print(f"served {joined.height}: mean predicted {predicted:.4f}, observed {observed:.4f}")
    assert abs(predicted - observed) <= 0.05 * observed, (predicted, observed)

    assert state.store is not None
    no_record = world.scope.filter(~pl.col(SCOPE_RECORD) & (pl.col(SCOPE_AGE) >= 14))
    vectors = state.store.get_vectors(no_record["person_id"].to_list())
    p_out = np.asarray(state.model.model.predict_proba(vectors))
    out_rate = float(
        vectors.select("person_id").join(world.labels, on="person_id")["label"].mean()  # type: ignore[arg-type]
    )
    p_mean = float(p_out.mean())
    print(f"left out {vectors.height}: would score {p_mean:.4f}, observed {out_rate:.4f}")
    assert float(p_out.mean()) > 3 * out_rate, (float(p_out.mean()), out_rate)
