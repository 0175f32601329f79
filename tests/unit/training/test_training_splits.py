"""Out-of-time periods with gaps, rolling-origin folds, snapshot schedules, config errors."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from riskcast.errors import ConfigError
from tests.training_helpers import TINY_CONFIG, write_config
from training.config import (
    FoldsConfig,
    Periods,
    SnapshotSchedule,
    load_training_config,
    parse_training_config,
)
from training.splits import rolling_origin_folds, split_periods

QUARTERS = SnapshotSchedule(start=date(2017, 3, 31), end=date(2024, 12, 31)).dates()


def _periods(tune_end: str, cal: tuple[str, str], test: str) -> Periods:
    return Periods.model_validate(
        {
            "tune": {"start": "2017-01-01", "end": tune_end},
            "calibrate": {"start": cal[0], "end": cal[1]},
            "test": {"start": test, "end": test},
        }
    )


def test_snapshots_are_month_ends() -> None:
    assert QUARTERS[:3] == [date(2017, 3, 31), date(2017, 6, 30), date(2017, 9, 30)]
    assert QUARTERS[-1] == date(2024, 12, 31) and len(QUARTERS) == 32
    feb = SnapshotSchedule(start=date(2024, 2, 1), end=date(2024, 3, 1), every_months=1).dates()
    assert feb == [date(2024, 2, 29)]


def test_periods_are_separated_by_one_horizon() -> None:
    split = split_periods(
        QUARTERS, _periods("2022-12-31", ("2023-12-31", "2023-12-31"), "2024-12-31"), 365
    )
    assert split.tune[-1] == date(2022, 12, 31)
    assert split.calibrate == [date(2023, 12, 31)]
    assert split.test == [date(2024, 12, 31)]
    assert (split.calibrate[0] - split.tune[-1]).days >= 365
    assert (split.test[0] - split.calibrate[-1]).days >= 365
    assert date(2023, 3, 31) in split.unused and date(2024, 9, 30) in split.unused
    assert not set(split.tune) & set(split.calibrate) | set(split.test) & set(split.calibrate)


def test_a_gap_shorter_than_the_horizon_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"calibrate starts 2023-09-30, only 92 days after"):
        split_periods(
            QUARTERS, _periods("2023-06-30", ("2023-09-30", "2023-12-31"), "2024-12-31"), 365
        )
    with pytest.raises(ConfigError, match="test starts 2024-12-31, only 92 days"):
        split_periods(
            QUARTERS, _periods("2022-06-30", ("2023-06-30", "2024-09-30"), "2024-12-31"), 365
        )


def test_an_empty_period_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"periods\.test: no snapshot"):
        split_periods(
            QUARTERS, _periods("2021-12-31", ("2023-01-01", "2023-12-31"), "2025-06-30"), 365
        )


def test_rolling_origin_folds_train_only_a_horizon_before_validation() -> None:
    tune = [d for d in QUARTERS if d <= date(2022, 6, 30)]
    folds = rolling_origin_folds(tune, FoldsConfig(n_folds=3, valid_snapshots=2), 365)
    assert [f.valid for f in folds][-1] == [date(2022, 3, 31), date(2022, 6, 30)]
    assert folds[0].valid[0] < folds[1].valid[0] < folds[2].valid[0]  # oldest first
    for fold in folds:
        assert all((fold.valid[0] - d).days >= 365 for d in fold.train)
        assert max(fold.train) == max(d for d in tune if (fold.valid[0] - d).days >= 365)
    with pytest.raises(ConfigError, match="training snapshot"):
        rolling_origin_folds(tune[:6], FoldsConfig(n_folds=2, valid_snapshots=2), 365)


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tiers"):
        parse_training_config({**TINY_CONFIG, "tiers": [{"name": "a", "min_probability": 0.2}]})
    with pytest.raises(ConfigError, match="random_split"):
        parse_training_config({**TINY_CONFIG, "random_split": True})
    bad = write_config(tmp_path / "training.yaml", label="nope")
    (tmp_path / "labels.yaml").write_text(
        Path("configs/labels.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="'nope' is not defined"):
        load_training_config(bad)


def test_the_shipped_config_is_valid_and_honest() -> None:
    resolved = load_training_config(
        Path(__file__).resolve().parents[3] / "configs" / "training.yaml"
    )
    cfg = resolved.training
    assert cfg.model_name == "recidivism-risk"
    split = split_periods(cfg.snapshots.dates(), cfg.periods, resolved.gap_days)
    folds = rolling_origin_folds(split.tune, cfg.folds, resolved.gap_days)
    assert len(folds) == cfg.folds.n_folds
