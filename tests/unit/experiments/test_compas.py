"""The COMPAS experiment: ProPublica's filter, leakage rules, and the train-table path."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.compas.features import (
    FILTERED_ROWS,
    MONOTONE,
    PROTECTED,
    TARGET,
    is_forbidden,
    load_raw,
    propublica_filter,
    screening_features,
)
from experiments.compas.run import END, START, update_readme
from training.tabular_cli import run_train_table


@pytest.fixture(scope="module")
def filtered():
    return propublica_filter(load_raw())


def test_propublica_filter_gives_6172_rows(filtered) -> None:
    assert filtered.height == FILTERED_ROWS == 6172
    assert load_raw().height == 7214


@pytest.mark.parametrize(
    "column",
    [
        "is_recid",
        "r_charge_desc",
        "violent_recid",
        "is_violent_recid",
        "vr_offense_date",
        "two_year_recid",
        "start",
        "end",
        "event",
        "decile_score",
        "score_text",
        "v_decile_score",
        "race",
        "age_cat",
        "in_custody",
        "id",
    ],
)
def test_outcome_score_and_protected_columns_are_forbidden(column: str) -> None:
    assert is_forbidden(column)


def test_screening_features_hold_no_outcome_or_score(filtered) -> None:
    frame = screening_features(filtered)
    inputs = [c for c in frame.columns if c not in (PROTECTED, TARGET)]
    assert not [c for c in inputs if is_forbidden(c)]
    assert "age" not in inputs and "age_at_screening" in inputs  # the published age leaks
    assert set(MONOTONE) <= set(inputs)
    assert frame.height == FILTERED_ROWS and frame.null_count().sum_horizontal().item() == 0


def test_train_table_path_excludes_race(filtered, tmp_path: Path) -> None:
    sample = screening_features(filtered).sample(600, seed=1)
    data = tmp_path / "compas.csv"
    sample.write_csv(data)
    outcome = run_train_table(
        data,
        TARGET,
        protected=[PROTECTED],
        monotone={"priors_count": 1},
        folds=2,
        inner_folds=2,
        trials=1,
        mlflow_log=False,
        metrics_json=tmp_path / "m.json",
    )
    features = outcome.result.features
    assert not [f for f in features if f.startswith("race") or is_forbidden(f)]
    assert {"priors_count", "age_at_screening", "sex=Male"} <= set(features)
    groups = {r["group"] for r in outcome.metrics["calibration_by_group"][PROTECTED]}
    assert "African-American" in groups
    assert (tmp_path / "m.json").exists()


def test_readme_block_is_replaced_between_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nold\n{END}\noutro\n")
    update_readme("new table", readme)
    assert readme.read_text() == f"intro\n{START}\nnew table\n{END}\noutro\n"
