"""A missing-share change in a group is judged net of the rest of its column: a rise every
group shares alerts once, overall; a rise in one group alone alerts in that group."""

from __future__ import annotations

import numpy as np
import polars as pl

from fairness.monitoring.config import DriftSettings
from fairness.monitoring.drift import input_drift

REGIONS = ["R1", "R2", "R3", "R4"]


def _frame(rng: np.random.Generator, n: int, missing: dict[str, float]) -> pl.DataFrame:
    region = rng.choice(REGIONS, n)
    x = rng.normal(0, 1, n)
    share = np.array([missing[r] for r in REGIONS])[np.searchsorted(REGIONS, region)]
    x[rng.random(n) < share] = np.nan
    return pl.DataFrame({"x": pl.Series(x).fill_nan(None), "region": region})


def _status(report: object, group_column: str, group: str) -> str:
    return report.find("x", group_column, group).status  # type: ignore[attr-defined,no-any-return]


def test_a_rise_every_group_shares_alerts_once_overall() -> None:
    rng = np.random.default_rng(21)
    before = dict.fromkeys(REGIONS, 0.55)
    after = {"R1": 0.62, "R2": 0.61, "R3": 0.60, "R4": 0.61}  # +5 to +7 points everywhere
    report = input_drift(
        _frame(rng, 40_000, before), _frame(rng, 40_000, after), ["x"], DriftSettings(), ["region"]
    )
    assert _status(report, "all", "all") == "alert"
    assert {_status(report, "region", r) for r in REGIONS} <= {"ok", "watch"}


def test_a_rise_in_one_group_alone_alerts_there() -> None:
    rng = np.random.default_rng(22)
    before = dict.fromkeys(REGIONS, 0.1)
    after = before | {"R3": 0.17}
    report = input_drift(
        _frame(rng, 40_000, before), _frame(rng, 40_000, after), ["x"], DriftSettings(), ["region"]
    )
    assert _status(report, "region", "R3") == "alert"
    assert {_status(report, "region", r) for r in ("R1", "R2", "R4")} == {"ok"}
    assert _status(report, "all", "all") == "ok"  # +1.75 points overall: below the watch
