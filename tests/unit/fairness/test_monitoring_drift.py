"""Input drift (fairness.monitoring.drift): PSI by hand, identical vs shifted samples, missing
shares, new categories, per-group figures, the noise guard for small groups, and the config."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from fairness.monitoring.config import DriftSettings, MonitoringConfig, load_monitoring_config
from fairness.monitoring.drift import (
    bin_codes,
    input_drift,
    psi,
    psi_from_counts,
    quantile_edges,
)
from riskcast.errors import ConfigError, InputError

ROOT = Path(__file__).resolve().parents[3]


def test_psi_by_hand() -> None:
    # reference median 2.5 splits [1,2,3,4] into halves; current puts 3 of 4 in the low bin
    got = psi(np.array([1.0, 2, 3, 4]), np.array([1.0, 1, 1, 4]), bins=2)
    want = (0.75 - 0.5) * math.log(0.75 / 0.5) + (0.25 - 0.5) * math.log(0.25 / 0.5)
    assert got == pytest.approx(want, abs=1e-12)
    assert got == pytest.approx(0.2746531, abs=1e-6)


def test_psi_empty_bin_uses_epsilon() -> None:
    got = float(psi_from_counts(np.array([5.0, 5.0]), np.array([10.0, 0.0]), 1e-4)[0])
    want = (1 - 0.5) * math.log(1 / 0.5) + (1e-4 - 0.5) * math.log(1e-4 / 0.5)
    assert got == pytest.approx(want)
    assert math.isfinite(got)


def _frame(rng: np.random.Generator, n: int, shift: float = 0.0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "x": rng.normal(shift, 1.0, n),
            "count": rng.poisson(0.4 + shift, n),
            "cat": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
            "sex": rng.choice(["F", "M"], n),
            "region": rng.choice(["N", "S", "E", "W"], n),
        }
    )


def test_identical_samples_are_ok_and_shifted_alert() -> None:
    rng = np.random.default_rng(7)
    ref, same, shifted = _frame(rng, 40_000), _frame(rng, 40_000), _frame(rng, 40_000, 0.6)
    settings = DriftSettings(seed=1)
    inputs = ["x", "count", "cat"]
    calm = input_drift(ref, same, inputs, settings, ["sex", "region"])
    assert len(calm.results) == 3 * (1 + 2 + 4)
    assert all(r.psi is not None and r.psi < 0.01 for r in calm.results)
    assert all(r.status == "ok" for r in calm.results)
    moved = input_drift(ref, shifted, inputs, settings, ["sex", "region"])
    for r in moved.results:
        if r.input == "cat":
            assert r.psi is not None and r.psi < 0.01
            assert r.status == "ok"
        else:
            assert r.psi is not None and r.psi > 0.25, (r.input, r.group, r.psi)
            assert r.p_value is not None and r.p_value < 1e-6
            assert r.status == "alert"
    assert {r.input for r in moved.alerts()} == {"x", "count"}


def test_shift_in_one_group_only_is_seen_in_that_group() -> None:
    rng = np.random.default_rng(8)
    ref, cur = _frame(rng, 40_000), _frame(rng, 40_000)
    cur = cur.with_columns(
        pl.when(pl.col("region") == "N").then(pl.col("x") + 1.0).otherwise(pl.col("x")).alias("x")
    )
    report = input_drift(ref, cur, ["x"], DriftSettings(), ["region"])
    assert report.find("x", "region", "N").status == "alert"
    for other in ("S", "E", "W"):
        assert report.find("x", "region", other).status == "ok"
    overall = report.find("x", "all", "all")
    assert overall.psi is not None and overall.psi < report.find("x", "region", "N").psi  # type: ignore[operator]


def test_new_categories_and_missing_share() -> None:
    rng = np.random.default_rng(9)
    ref, cur = _frame(rng, 20_000), _frame(rng, 20_000)
    cats = cur["cat"].to_numpy().copy()
    cats[:400] = "z"  # 2 % of the rows in an unseen category
    xs = cur["x"].to_numpy().copy()
    xs[rng.random(len(xs)) < 0.08] = np.nan
    cur = cur.with_columns(pl.Series("cat", cats), pl.Series("x", xs).fill_nan(None))
    report = input_drift(ref, cur, ["cat", "x"], DriftSettings())
    cat = report.find("cat", "all", "all")
    assert cat.new_categories == ["z"]
    assert cat.new_category_share == pytest.approx(0.02)
    assert cat.status == "alert"
    x = report.find("x", "all", "all")
    assert x.missing_reference == 0.0
    assert x.missing_current == pytest.approx(0.08, abs=0.01)
    assert x.psi is not None and x.psi < 0.01  # missing values are outside the bins
    assert x.status == "alert"  # 8 points more missing


def test_small_group_noise_does_not_alert() -> None:
    # 60 persons per side: PSI over 10 bins is large by chance alone; the test guards it
    rng = np.random.default_rng(10)
    ref = pl.DataFrame({"x": rng.normal(size=60), "g": ["a"] * 60})
    cur = pl.DataFrame({"x": rng.normal(size=60), "g": ["a"] * 60})
    r = input_drift(ref, cur, ["x"], DriftSettings(), ["g"]).find("x", "g", "a")
    assert r.psi is not None and r.psi > 0.1
    assert r.status == "ok"
    tiny = input_drift(ref.head(30), cur.head(30), ["x"], DriftSettings(), ["g"])
    assert tiny.find("x", "g", "a").status == "insufficient_evidence"


def test_bad_inputs_refused() -> None:
    frame = pl.DataFrame({"x": [1.0, 2.0]})
    with pytest.raises(InputError):
        input_drift(frame, frame, ["y"], DriftSettings())
    with pytest.raises(InputError):
        input_drift(frame, frame, ["x"], DriftSettings(), ["sex"])


def test_config_file_loads_and_refuses_unknown_keys(tmp_path: Path) -> None:
    config = load_monitoring_config(ROOT / "configs" / "monitoring.yaml")
    assert isinstance(config, MonitoringConfig)
    assert config.drift.psi_watch < config.drift.psi_alert
    bad = tmp_path / "monitoring.yaml"
    bad.write_text('config_version: "x"\ndrift: {psi_alarm: 0.3}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="psi_alarm"):
        load_monitoring_config(bad)
    bad.write_text(
        'config_version: "x"\ndrift: {psi_watch: 0.3, psi_alert: 0.2}\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="psi_watch"):
        load_monitoring_config(bad)


def test_ks_and_chi2_agree_with_scipy() -> None:
    from scipy import stats

    from fairness.monitoring.drift import chi2_test, ks_test

    rng = np.random.default_rng(12)
    a, b = rng.normal(0, 1, 3000), rng.normal(0.05, 1, 2500)
    distance, p_value = ks_test(a, b)
    ref = stats.ks_2samp(a, b, method="asymp")
    assert distance == pytest.approx(ref.statistic, abs=1e-12)
    assert p_value == pytest.approx(ref.pvalue, rel=0.05, abs=1e-3)
    table = np.array([[120.0, 80.0, 40.0], [100.0, 95.0, 60.0]])
    chi2, p = chi2_test(table)
    want = stats.chi2_contingency(table, correction=False)
    assert chi2 == pytest.approx(want[0])
    assert p == pytest.approx(want[1])


def test_point_mass_on_an_edge_keeps_its_bin_and_no_bin_is_empty_in_the_reference() -> None:
    rng = np.random.default_rng(4)
    reference = np.where(rng.random(5_000) < 0.6, 1.0, rng.uniform(2, 10, 5_000))
    edges = quantile_edges(reference, 10)
    codes = bin_codes(reference, edges)
    assert (np.bincount(codes, minlength=len(edges) + 1) > 0).all()
    assert edges[0] > 1.0  # the mass at the minimum is inside the first bin, not on its edge
    moved = np.where(rng.random(5_000) < 0.6, 0.9, rng.uniform(2, 10, 5_000))
    assert psi(reference, moved) < 0.02
    counts = rng.poisson(0.4, 5_000).astype(float)  # integers: edges fall between them
    assert set(quantile_edges(counts, 10).tolist()) <= {0.5, 1.5, 2.5, 3.5}
    wider = np.where(rng.random(5_000) < 0.2, 1.0, rng.uniform(2, 10, 5_000))
    assert psi(reference, wider) > 0.25  # the mass's share changing is still drift
