"""The served book of a scoped model: the scope is decided on a narrow read of the online
store, only the population's vectors are loaded, and the book equals the one built from every
vector with the scope applied in `build_scorebook`."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl

from features.frames.builder import Population
from features.frames.scope import SCOPE_AGE, SCOPE_RECORD, PopulationScope
from features.online import SqlOnlineStore
from serving.bookkeeper import BookKeeper, population_vectors
from serving.scorebook import build_scorebook
from training.model import FeatureInfo, RiskModel, Tier

N = 600
NAMES = [f"f{i}" for i in range(3)]


class _Spy:
    """The real SQLite online store, recording the ids each full read asked for."""

    def __init__(self, store: SqlOnlineStore) -> None:
        self.store, self.asked = store, list[list[str]]()

    def current(self) -> Any:
        return self.store.current()

    def get_vectors(self, ids: list[str]) -> pl.DataFrame:
        self.asked.append(list(ids))
        return self.store.get_vectors(ids)

    def get_columns(self, columns: list[str], ids: list[str] | None = None) -> pl.DataFrame:
        return self.store.get_columns(columns, ids)


def _world(tmp_path: Path) -> tuple[RiskModel, pl.DataFrame, pl.DataFrame, _Spy]:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(N, 3))
    y = (x[:, 0] + rng.normal(size=N) > 0).astype(float)
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 7, "seed": 1},
        lgb.Dataset(x, y, feature_name=NAMES),
        num_boost_round=15,
    )
    model = RiskModel(
        booster,
        None,
        [Tier("low", 0.0), Tier("high", 0.5)],
        [FeatureInfo(f, "criminal_history", "static", 0, f) for f in NAMES],
    )
    ids = [f"p{i:04d}" for i in range(N)]
    vectors = pl.DataFrame(
        {
            "person_id": ids,
            **{f: x[:, i] for i, f in enumerate(NAMES)},
            SCOPE_RECORD: rng.random(N) < 0.3,
            SCOPE_AGE: pl.Series(rng.integers(10, 70, N), dtype=pl.Int32),
        }
    )
    directory = pl.DataFrame(
        {
            "person_id": ids[:-20],  # 20 stored persons have moved out of every unit
            "region": [["A", "B"][i % 2] for i in range(N - 20)],
            "district": [f"D{i % 5}" for i in range(N - 20)],
        }
    )
    online = SqlOnlineStore(f"sqlite:///{tmp_path / 'online.sqlite'}")
    online.materialize(vectors, date(2025, 6, 30), "spec")
    return model, vectors, directory, _Spy(online)


def test_only_the_population_is_loaded_and_the_book_is_the_same(tmp_path: Path) -> None:
    model, vectors, directory, spy = _world(tmp_path)
    scope = PopulationScope(population=Population.WITH_RECORD, min_age=18)
    ids = directory["person_id"].to_list()
    inside, outside = population_vectors(spy, ids, scope)
    expected_in = vectors.filter(
        pl.col(SCOPE_RECORD) & (pl.col(SCOPE_AGE) >= 18) & pl.col("person_id").is_in(ids)
    )
    assert spy.asked == [expected_in["person_id"].to_list()]  # one full read: the population
    assert sorted(inside["person_id"]) == sorted(expected_in["person_id"])
    assert outside is not None and outside.height == len(ids) - expected_in.height

    keeper = BookKeeper(model, "1", scope, spy, directory, check_seconds=0)
    keeper.book()
    served = keeper.wait(60)
    assert served is not None and keeper.error is None
    reference = build_scorebook(
        model,
        spy.store.get_vectors(ids),
        directory,
        model_version="1",
        materialization="m",
        scope=scope,
    )
    assert (served.size, served.outside) == (reference.size, reference.outside)
    assert served.outside_units == reference.outside_units
    assert served.units.keys() == reference.units.keys()
    for unit, rows in reference.units.items():  # the same persons, in the same rank order
        assert list(served.person_ids[served.units[unit]]) == list(reference.person_ids[rows])
    by_id = dict(zip(reference.person_ids.tolist(), reference.probability.tolist(), strict=True))
    for pid, p in zip(served.person_ids.tolist(), served.probability.tolist(), strict=True):
        assert p == by_id[pid]


def test_without_a_scope_everyone_stored_is_read_and_nobody_is_outside(tmp_path: Path) -> None:
    _, _, directory, spy = _world(tmp_path)
    ids = directory["person_id"].to_list()
    vectors, outside = population_vectors(spy, ids, None)
    assert outside is None and spy.asked == [ids] and vectors.height == len(ids)


def test_a_store_without_the_scope_columns_puts_everyone_outside(tmp_path: Path) -> None:
    """A materialisation made before scopes existed: nobody is scored on no evidence."""
    _model, vectors, directory, spy = _world(tmp_path)
    spy.store.materialize(vectors.drop(SCOPE_RECORD), date(2025, 7, 31), "old")
    ids = directory["person_id"].to_list()
    inside, outside = population_vectors(
        spy, ids, PopulationScope(population=Population.WITH_RECORD)
    )
    assert inside.height == 0 and outside is not None and outside.height == len(ids)
