"""Model behaviour: monotone constraints, additive contributions, no protected inputs."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from features.contract import PROTECTED_ATTRIBUTES
from features.frames.definitions import load_spec
from tests.model.conftest import Trained
from training.model import CONTRIB_PREFIX, RiskModel, fit_lgbm
from training.pipeline import check_no_protected, monotone_constraints


def _rows(model: RiskModel, n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    data = {}
    for name in model.feature_names:
        values = rng.gamma(0.6, 3.0, n)
        values[rng.random(n) < 0.1] = np.nan
        data[name] = values
    return pl.DataFrame(data).fill_nan(None)


def test_increasing_a_plus_feature_never_lowers_the_score(trained: Trained) -> None:
    model = trained.model
    rows = _rows(model, 2000, 1)
    base = model.raw_score(rows)
    for info in model.features:
        if info.direction == 0:
            continue
        for step in (0.5, 1.0, 5.0, 100.0):
            bumped = rows.with_columns(pl.col(info.name).fill_null(0.0) + step)
            filled = rows.with_columns(pl.col(info.name).fill_null(0.0))
            delta = model.raw_score(bumped) - model.raw_score(filled)
            assert (info.direction * delta >= -1e-12).all(), info.name
    assert np.isfinite(base).all()


def test_fit_lgbm_respects_monotone_constraints_on_noisy_data() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    x = pl.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    # a wiggly, non-monotone truth in `a`: the constraint must still hold
    logit = np.sin(3 * x["a"].to_numpy()) + 0.5 * x["b"].to_numpy()
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    booster = fit_lgbm(x, y, {"num_leaves": 31, "num_boost_round": 80}, {"a": 1}, seed=0)
    grid = np.linspace(-3, 3, 200)
    for b in np.linspace(-2, 2, 25):
        raw = booster.predict(np.column_stack([grid, np.full_like(grid, b)]), raw_score=True)
        assert (np.diff(raw) >= -1e-12).all()


def test_contributions_add_up_to_the_raw_score(trained: Trained) -> None:
    model = trained.model
    pred = model.predict(_rows(model, 1000, 2))
    contrib = pred.select(model.contribution_columns).to_numpy()
    assert model.contribution_columns[-1] == CONTRIB_PREFIX + "bias"
    assert len(model.contribution_columns) == len(model.feature_names) + 1
    np.testing.assert_allclose(contrib.sum(axis=1), pred["raw_score"].to_numpy(), atol=1e-9)
    assert pred["probability"].is_between(0, 1).all()
    assert set(pred["tier"].unique()) <= {"low", "medium", "high", "very_high"}
    by_domain = model.domain_contributions(pred)
    np.testing.assert_allclose(
        by_domain.to_numpy().sum(axis=1), pred["raw_score"].to_numpy(), atol=1e-9
    )


def test_protected_attributes_are_never_model_inputs(trained: Trained) -> None:
    spec = load_spec()
    protected = set(PROTECTED_ATTRIBUTES) | set(spec.protected_features())
    assert "ethnicity" in protected
    assert not protected & set(trained.model.feature_names)
    assert not protected & set(trained.model.booster.feature_name())
    assert not protected & set(monotone_constraints(spec))


def test_check_no_protected_refuses_a_leak() -> None:
    from riskcast.errors import ConfigError

    spec = load_spec()
    with pytest.raises(ConfigError, match="ethnicity"):
        check_no_protected([*spec.model_inputs(), "ethnicity"], spec)
    check_no_protected(spec.model_inputs(), spec)


def test_saved_model_round_trips(trained: Trained, tmp_path) -> None:
    model = trained.model
    rows = _rows(model, 300, 3)
    again = RiskModel.load(model.save(tmp_path / "m"))
    assert again.predict(rows).equals(model.predict(rows))
