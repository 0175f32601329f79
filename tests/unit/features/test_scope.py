"""Scope of validity: who a model may score, decided per person and as-of date."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from pydantic import ValidationError

from features.frames.builder import Population, collect_features
from features.frames.definitions import load_spec
from features.frames.scope import (
    SCOPE_AGE,
    SCOPE_RECORD,
    PopulationScope,
    in_scope,
    outside_reasons,
    released_column,
    scope_columns,
)
from features.store.offline import OfflineStore
from tests.training_helpers import tiny_delivery

T = date(2025, 6, 30)
RECORD = PopulationScope(population=Population.WITH_RECORD, min_age=14)


def _vectors(rows: list[tuple[str, bool | None, int | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "person_id": [r[0] for r in rows],
            "as_of": [T] * len(rows),
            SCOPE_RECORD: [r[1] for r in rows],
            SCOPE_AGE: [r[2] for r in rows],
        },
        schema={
            "person_id": pl.String(),
            "as_of": pl.Date(),
            SCOPE_RECORD: pl.Boolean(),
            SCOPE_AGE: pl.Int32(),
        },
    )


def test_each_person_outside_gets_the_reason_that_applies() -> None:
    frame = _vectors(
        [("adult", True, 30), ("none", False, 30), ("child", True, 13), ("age?", True, None)]
    )
    reasons = dict(zip(frame["person_id"], outside_reasons(frame, RECORD), strict=True))
    assert reasons["adult"] is None
    assert reasons["none"] == (
        "no criminal case known by 2025-06-30: the model does not score persons without a record"
    )
    assert reasons["child"] == (
        "aged 13 on 2025-06-30: the model scores only persons aged 14 or more"
    )
    assert reasons["age?"] is not None and reasons["age?"].startswith("age unknown on 2025-06-30")
    assert in_scope(frame, RECORD)["person_id"].to_list() == ["adult"]


def test_without_a_minimum_age_children_with_a_record_are_inside() -> None:
    frame = _vectors([("child", True, 13), ("none", False, 13)])
    scope = PopulationScope(population=Population.WITH_RECORD)
    assert outside_reasons(frame, scope).to_list()[0] is None
    everyone = PopulationScope(population=Population.ALL)
    assert outside_reasons(frame, everyone).to_list() == [None, None]


def test_vectors_without_membership_put_everyone_outside() -> None:
    """Vectors materialised before scopes existed (or for another release window) carry no
    evidence of membership: nobody is scored."""
    frame = _vectors([("adult", True, 30)]).drop(SCOPE_RECORD)
    why = outside_reasons(frame, RECORD).to_list()[0]
    assert why is not None and "riskcast features materialize" in why
    released = PopulationScope(population=Population.RELEASED, released_within_months=6)
    why = outside_reasons(_vectors([("a", True, 30)]), released).to_list()[0]
    assert why is not None and released_column(6) in why


def test_a_scope_is_coherent() -> None:
    with pytest.raises(ValidationError, match="released_within_months"):
        PopulationScope(population=Population.RELEASED)
    with pytest.raises(ValidationError, match="only for population released"):
        PopulationScope(population=Population.WITH_RECORD, released_within_months=12)
    with pytest.raises(ValidationError, match="extra"):
        PopulationScope.model_validate({"population": "all", "maximum_age": 3})
    spec = load_spec()
    assert PopulationScope.of("released", spec, None).released_within_months == (
        spec.populations.released_within_months
    )
    assert "aged 14 or more" in RECORD.describe() and "`with_record`" in RECORD.describe()


def test_membership_is_the_training_populations_as_of_each_date(tmp_path: Path) -> None:
    """The columns the online store keeps equal what the builder restricts training to, as of
    each date (two clocks: a case registered after T does not put a person in at T)."""
    _, home = tiny_delivery(tmp_path, persons=1500, seed=5)
    store, spec = OfflineStore(home), load_spec()
    early, late = date(2019, 12, 31), date(2024, 12, 31)
    scope = scope_columns(store, spec, [early, late])
    months = spec.populations.released_within_months
    for day in (early, late):
        at = scope.filter(pl.col("as_of") == day)
        for pop, column in (
            (Population.WITH_RECORD, SCOPE_RECORD),
            (Population.RELEASED, released_column(months)),
        ):
            members = set(collect_features(store, spec, [day], pop)["person_id"].to_list())
            flagged = set(at.filter(pl.col(column))["person_id"].to_list())
            assert flagged == members and members
        everyone = collect_features(store, spec, [day], Population.ALL)
        ages = everyone.select("person_id", "age_at").join(at, on="person_id")
        assert ages.height == everyone.height
        assert (ages["age_at"].cast(pl.Int32) == ages[SCOPE_AGE]).all()
    before = set(scope.filter((pl.col("as_of") == early) & pl.col(SCOPE_RECORD))["person_id"])
    after = set(scope.filter((pl.col("as_of") == late) & pl.col(SCOPE_RECORD))["person_id"])
    assert before < after  # records accumulate; nobody has one before it is known
