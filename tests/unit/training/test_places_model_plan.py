"""Places: intervals, the saved model and its reasons, the origin plan and the config."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from riskcast.errors import ConfigError, InputError
from training.places.config import PlacesTrainingConfig, load_places_training_config
from training.places.model import PlacesModel, count_interval, fit_count_booster, fit_dispersion
from training.places.plan import last_complete_origin, make_folds, plan_origins


def test_poisson_interval_by_hand() -> None:
    lower, upper = count_interval(np.array([2.0]), 0.0, 0.8)
    # Poisson(2): P(X<=0)=.135 >= .1 -> lower 0; P(X<=3)=.857 < .9, P(X<=4)=.947 -> upper 4
    assert (lower[0], upper[0]) == (0.0, 4.0)


def test_overdispersed_interval_is_wider() -> None:
    mu = np.array([3.0])
    _, up_p = count_interval(mu, 0.0, 0.8)
    _, up_nb = count_interval(mu, 1.0, 0.8)
    assert up_nb[0] > up_p[0]
    n = 1.0
    assert up_nb[0] == stats.nbinom.ppf(0.9, n, n / (n + 3.0))


def test_dispersion_recovers_alpha() -> None:
    rng = np.random.default_rng(1)
    mu = rng.uniform(0.5, 4, 20000)
    alpha = 0.5
    y = rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu))
    assert fit_dispersion(y.astype(float), mu) == pytest.approx(alpha, abs=0.05)
    assert fit_dispersion(rng.poisson(mu).astype(float), mu) == pytest.approx(0.0, abs=0.03)


def _model() -> tuple[PlacesModel, pl.DataFrame]:
    rng = np.random.default_rng(0)
    x = pl.DataFrame(
        {
            "count_4w": rng.poisson(2, 3000).astype(float),
            "horizon": rng.integers(1, 9, 3000).astype(float),
        }
    )
    y = rng.poisson(0.2 + 0.5 * x["count_4w"].to_numpy()).astype(float)
    booster = fit_count_booster(
        x.to_numpy(),
        y,
        ["count_4w", "horizon"],
        {"objective": "poisson", "num_boost_round": 30, "num_leaves": 4},
        seed=1,
        num_threads=1,
    )
    model = PlacesModel(
        booster, ["count_4w", "horizon"], {"count_4w": "incidents in 4 weeks"}, "poisson", 8, 0.2
    )
    return model, x


def test_model_roundtrip_and_reasons(tmp_path: Path) -> None:
    model, x = _model()
    saved = model.save(tmp_path / "m")
    back = PlacesModel.load(saved)
    assert np.allclose(back.predict(x.head(50)), model.predict(x.head(50)))
    assert back.alpha == 0.2 and back.horizons == 8
    reasons = [json.loads(r) for r in back.reasons(x.head(5), top=3)]
    assert all(len(r) == 2 for r in reasons)  # only two inputs
    first = reasons[0][0]
    assert first["feature"] == "count_4w" and first["description"] == "incidents in 4 weeks"
    contrib = back.contributions(x.head(5))
    raw = back.booster.predict(x.head(5).to_numpy(), raw_score=True)
    bias = np.asarray(back.booster.predict(x.head(5).to_numpy(), pred_contrib=True))[:, -1]
    assert np.allclose(contrib.sum(axis=1) + bias, raw)
    with pytest.raises(InputError, match="not a places model"):
        PlacesModel.load(tmp_path)


def _cfg(**kw: object) -> PlacesTrainingConfig:
    raw = {"search": {"params": {"num_leaves": {"type": "int", "low": 4, "high": 8}}}, **kw}
    return PlacesTrainingConfig.model_validate(raw)


def test_plan_origins_gaps_and_sundays() -> None:
    cfg = _cfg(origins={"test_weeks": 26, "train_weeks": 104, "train_every_weeks": 2})
    plan = plan_origins(cfg, date(2025, 12, 31), date(2016, 1, 1))
    assert all(d.weekday() == 6 for d in plan.all)
    assert len(plan.test) == 26 and plan.test[-1] == last_complete_origin(date(2025, 12, 31), 8)
    # week 8 of the last test origin ended before the extraction
    assert plan.test[-1] + timedelta(weeks=8) < date(2025, 12, 31)
    assert plan.train[-1] + timedelta(weeks=8) <= plan.test[0]
    for fold in plan.folds:
        assert max(fold.train) + timedelta(weeks=8) <= min(fold.valid)
    assert [len(f.valid) for f in plan.folds] == [6, 6, 6]


def test_plan_refuses_a_short_history() -> None:
    with pytest.raises(InputError, match="training origins"):
        plan_origins(_cfg(), date(2025, 12, 31), date(2025, 1, 1))
    with pytest.raises(InputError, match="valid_origins"):
        make_folds([date(2025, 1, 5), date(2025, 1, 12)], 1, 5, 8)


def test_config_defaults_and_refusals(tmp_path: Path) -> None:
    cfg, source = load_places_training_config()
    assert cfg.model_name == "street-crime" and source.name == "places_training.yaml"
    assert set(cfg.search.objectives) == {"poisson", "tweedie"}
    bad = tmp_path / "p.yaml"
    bad.write_text("search: {params: {num_leaves: {type: int, low: 4, high: 8}}}\nhorizon: 8\n")
    with pytest.raises(ConfigError, match="horizon"):
        load_places_training_config(bad)
