"""Out-of-time splits: periods of as-of dates separated by a gap, and rolling-origin folds.

A period starts at least ``gap_days`` (one label horizon) after the previous period's last
as-of date, so every label of the earlier period is known by the later period's first as-of
date: a model tuned on one period and judged on the next used nothing it could not have known.
Snapshots that fall between periods are not used. Random splits are deliberately not offered.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date

import polars as pl

from riskcast.errors import ConfigError
from training.config import DateRange, FoldsConfig, Periods

PERIODS = ("tune", "calibrate", "test")


@dataclass(frozen=True)
class PeriodSplit:
    """The as-of dates of each period (sorted) and the snapshots left unused (in gaps)."""

    tune: list[date]
    calibrate: list[date]
    test: list[date]
    unused: list[date]
    gap_days: int

    def dates(self, period: str) -> list[date]:
        if period not in PERIODS:
            raise KeyError(period)
        out: list[date] = getattr(self, period)
        return out

    @property
    def used(self) -> list[date]:
        return sorted({*self.tune, *self.calibrate, *self.test})


@dataclass(frozen=True)
class FoldDates:
    """One rolling-origin fold: train on ``train``, validate on ``valid`` (later, after a gap)."""

    train: list[date]
    valid: list[date]


def split_periods(snapshots: list[date], periods: Periods, gap_days: int) -> PeriodSplit:
    """Assign snapshots to periods; refuse empty periods, overlaps and gaps shorter than
    ``gap_days`` with a message naming the periods and dates."""
    ordered = sorted(set(snapshots))
    assigned: dict[str, list[date]] = {}
    for name in PERIODS:
        rng: DateRange = getattr(periods, name)
        assigned[name] = [d for d in ordered if d in rng]
        if not assigned[name]:
            raise ConfigError(
                f"periods.{name}: no snapshot between {rng.start} and {rng.end} (snapshots: "
                f"{ordered[0] if ordered else '-'} .. {ordered[-1] if ordered else '-'})"
            )
    for earlier, later in itertools.pairwise(PERIODS):
        last, first = assigned[earlier][-1], assigned[later][0]
        if (first - last).days < gap_days:
            raise ConfigError(
                f"periods: {later} starts {first}, only {(first - last).days} days after "
                f"{earlier}'s last snapshot {last}; a gap of at least {gap_days} days (one label "
                "horizon) is needed so no label window reaches past the next period's first as-of"
            )
    used = {d for dates in assigned.values() for d in dates}
    return PeriodSplit(
        tune=assigned["tune"],
        calibrate=assigned["calibrate"],
        test=assigned["test"],
        unused=[d for d in ordered if d not in used],
        gap_days=gap_days,
    )


def rolling_origin_folds(tune: list[date], folds: FoldsConfig, gap_days: int) -> list[FoldDates]:
    """Folds over the tuning snapshots, oldest first: the last ``n_folds`` blocks of
    ``valid_snapshots`` dates are validation blocks; each trains on every tuning snapshot at
    least ``gap_days`` before its block. Refuses folds with fewer than ``min_train_snapshots``."""
    ordered = sorted(set(tune))
    block = folds.valid_snapshots
    out: list[FoldDates] = []
    for k in range(folds.n_folds, 0, -1):
        end = len(ordered) - (k - 1) * block
        valid = ordered[end - block : end]
        if end - block < 0 or not valid:
            raise ConfigError(
                f"folds: {folds.n_folds} folds of {block} snapshots need more than the "
                f"{len(ordered)} tuning snapshots"
            )
        train = [d for d in ordered if (valid[0] - d).days >= gap_days]
        if len(train) < folds.min_train_snapshots:
            raise ConfigError(
                f"folds: the fold validating on {valid[0]}..{valid[-1]} has {len(train)} training "
                f"snapshot(s) at least {gap_days} days earlier; need "
                f"{folds.min_train_snapshots} (start the tuning period earlier or use fewer folds)"
            )
        out.append(FoldDates(train=train, valid=valid))
    return out


def select_dates(frame: pl.DataFrame, dates: list[date]) -> pl.DataFrame:
    """Rows of ``frame`` whose ``as_of`` is in ``dates``."""
    return frame.filter(pl.col("as_of").is_in(pl.Series(dates, dtype=pl.Date()).implode()))
