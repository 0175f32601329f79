"""Exact contributions per tree and decision pattern equal LightGBM's pred_contrib on every row."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from training import contributions
from training.contributions import SplitCodec, exact_contributions


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.column_stack(
        [
            rng.poisson(1.0, n).astype(float),  # counts with many zeros
            rng.integers(0, 5, n).astype(float),
            np.round(rng.normal(40, 12, n)),  # an age
            rng.random(n),  # continuous
            rng.poisson(0.3, n).astype(float),
        ]
    )
    x[rng.random((n, x.shape[1])) < 0.08] = np.nan  # missing values everywhere
    logit = 0.8 * np.nan_to_num(x[:, 0]) - 0.04 * np.nan_to_num(x[:, 2], nan=40) + x[:, 1] * 0.3
    y = (rng.random(n) < 1 / (1 + np.exp(-(logit - 0.5)))).astype(int)
    return x, y


def _train(x: np.ndarray, y: np.ndarray, **params: object) -> lgb.Booster:
    base = {"objective": "binary", "num_leaves": 15, "verbose": -1, "min_data_in_leaf": 20}
    return lgb.train({**base, **params}, lgb.Dataset(x, y), num_boost_round=40)


@pytest.mark.parametrize(
    "params",
    [{}, {"zero_as_missing": True}, {"use_missing": False}, {"max_bin": 7}],
    ids=["default", "zero-as-missing", "no-missing", "coarse-bins"],
)
def test_equal_to_pred_contrib_on_every_row(params: dict[str, object]) -> None:
    x, y = _data(6000, seed=1)
    booster = _train(x, y, **params)
    expected = booster.predict(x, pred_contrib=True)
    got = exact_contributions(booster, x)
    assert got.method == "per-tree patterns"
    assert got.patterns < x.shape[0] * booster.num_trees() / 4  # the population repeats
    np.testing.assert_allclose(got.contrib, expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(got.raw, booster.predict(x, raw_score=True), rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.contrib.sum(axis=1), got.raw, rtol=0, atol=1e-9)


def test_categorical_splits_are_exact() -> None:
    x, y = _data(4000, seed=2)
    x[:, 1] = np.nan_to_num(x[:, 1], nan=0.0)
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 15, "verbose": -1, "min_data_in_leaf": 20},
        lgb.Dataset(x, y, categorical_feature=[1]),
        num_boost_round=20,
    )
    assert 1 in SplitCodec.from_booster(booster).categorical
    np.testing.assert_allclose(
        exact_contributions(booster, x).contrib, booster.predict(x, pred_contrib=True), atol=1e-9
    )


def test_rows_unseen_in_training_still_exact() -> None:
    """Values beyond every threshold, exact zeros, NaN and -0.0 in new rows."""
    x, y = _data(3000, seed=3)
    booster = _train(x, y)
    new = np.array(
        [[1e9, -1e9, 0.0, -0.0, np.nan], [np.nan] * 5, [0.0] * 5, [1e-40, 3.0, 120.0, 2.0, 7.0]]
    )
    np.testing.assert_allclose(
        exact_contributions(booster, new).contrib,
        booster.predict(new, pred_contrib=True),
        atol=1e-9,
    )


def test_dense_populations_fall_back_to_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = _data(2000, seed=4)
    booster = _train(x, y)
    monkeypatch.setattr(contributions, "DENSE_SHARE", -1.0)
    got = exact_contributions(booster, x)
    assert got.method == "direct"
    np.testing.assert_allclose(got.contrib, booster.predict(x, pred_contrib=True), atol=1e-12)


def test_no_rows() -> None:
    x, y = _data(500, seed=5)
    got = exact_contributions(_train(x, y), x[:0])
    assert got.contrib.shape == (0, x.shape[1] + 1) and got.raw.shape == (0,)


def test_concurrent_predictions_on_the_same_booster_stay_whole() -> None:
    """A service scores requests (raw and pred_contrib) while its score book is built with
    per-tree calls on the same booster: no call may see another's iteration range, and
    nothing may crash (LightGBM's pred_contrib is not thread safe on its own)."""
    import threading

    from training.model import locked_predict

    x, y = _data(4000, seed=6)
    booster = _train(x, y)
    expected_raw = booster.predict(x[:50], raw_score=True)
    expected_contrib = booster.predict(x[:50], pred_contrib=True)
    wrong: list[float] = []
    done = threading.Event()

    def requests() -> None:
        while not done.is_set():
            raw = locked_predict(booster, x[:50], raw_score=True, num_threads=1)
            contrib = locked_predict(booster, x[:50], pred_contrib=True, num_threads=1)
            wrong.append(
                max(
                    float(np.abs(raw - expected_raw).max()),
                    float(np.abs(contrib - expected_contrib).max()),
                )
            )

    threads = [threading.Thread(target=requests) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(3):
            got = exact_contributions(booster, x)
            np.testing.assert_allclose(
                got.contrib, booster.predict(x, pred_contrib=True), atol=1e-9
            )
    finally:
        done.set()
        for thread in threads:
            thread.join()
    assert wrong and max(wrong) < 1e-12


def test_lightgbm_zero_band_is_its_float_threshold() -> None:
    """|x| <= 1e-35f counts as zero for LightGBM; 1e-35 as a double is a little smaller."""
    x, y = _data(3000, seed=7)
    booster = _train(x, y, zero_as_missing=True)
    edge = float(np.float32(1e-35))
    # tiny values first, then ordinary small values that share their interval (the last row
    # of a pattern represents it): a wrong zero band gives the tiny rows their shares
    values = [edge, -edge, 1e-35, 0.3, -0.3, 0.2, -0.2]
    new = np.tile(x[:4], (len(values), 1))
    new[:, 0] = np.repeat(values, 4)
    np.testing.assert_allclose(
        exact_contributions(booster, new).contrib,
        booster.predict(new, pred_contrib=True),
        atol=1e-9,
    )
    # the band itself: +-1e-35f are zero (LightGBM's IsZero), 2e-35 is not
    codec = SplitCodec.from_booster(booster)
    probe = np.zeros((4, x.shape[1]))
    probe[:, 0] = [edge, -edge, 0.0, 2e-35]
    codes = codec.global_codes(probe)[0]
    assert codes[:3].tolist() == [1, 1, 1] and codes[3] != 1


def test_multiclass_boosters_are_refused() -> None:
    from riskcast.errors import InputError

    x, y = _data(600, seed=8)
    y3 = (y + (x[:, 1] > 2)).astype(int)
    booster = lgb.train(
        {"objective": "multiclass", "num_class": 3, "verbose": -1}, lgb.Dataset(x, y3), 5
    )
    with pytest.raises(InputError, match="one tree per iteration"):
        exact_contributions(booster, x)
