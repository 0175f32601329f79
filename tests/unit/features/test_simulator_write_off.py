"""Debt write-off (`obligations.write_off_years`): an unpaid obligation is closed a fixed time
after its due date, so the age of the oldest overdue debt stops growing with the calendar."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from features.simulator import SimulationResult, SimulatorConfig, simulate

START = date(2012, 1, 1)
EXTRACTED = date(2024, 12, 31)
AS_OF = [date(2022, 12, 31)]
YEARS = 3


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[SimulationResult, SimulationResult]:
    root = tmp_path_factory.mktemp("write_off")
    off = SimulatorConfig.model_validate({"obligations": {"write_off_years": YEARS}})
    return (
        simulate(root / "base", 4_000, 3, START, EXTRACTED, as_of=AS_OF),
        simulate(root / "off", 4_000, 3, START, EXTRACTED, as_of=AS_OF, config=off),
    )


def _obligations(result: SimulationResult) -> pl.DataFrame:
    return pl.read_parquet(result.delivery / "obligations.parquet")


def _oldest_overdue_days(ob: pl.DataFrame, t: date) -> pl.Series:
    overdue = ob.filter(
        (pl.col("due_at") < t) & (pl.col("paid_at").is_null() | (pl.col("paid_at") > t))
    )
    return overdue.group_by("person_id").agg(
        (pl.lit(t) - pl.col("due_at").min()).dt.total_days().alias("days")
    )["days"]


def test_default_leaves_write_off_out_of_the_recorded_config() -> None:
    assert "write_off_years" not in SimulatorConfig().model_dump()["obligations"]
    dumped = SimulatorConfig.model_validate({"obligations": {"write_off_years": 2}}).model_dump()
    assert dumped["obligations"]["write_off_years"] == 2


def test_write_off_closes_old_debts_and_changes_nothing_else(
    runs: tuple[SimulationResult, SimulationResult],
) -> None:
    base, off = (_obligations(r) for r in runs)
    assert base.drop("paid_amount", "paid_at").equals(off.drop("paid_amount", "paid_at"))
    limit = pl.col("due_at") + pl.duration(days=round(YEARS * 365.25))
    late = base.filter(
        (pl.col("paid_at").is_null() | (pl.col("paid_at") > limit)) & (limit <= EXTRACTED)
    )
    assert late.height > 50  # the scenario has debts to write off
    changed = off.join(late.select("obligation_id"), on="obligation_id")
    # closed on the write-off day (paid_at set iff paid in full: the contract's rule)
    assert (changed["paid_at"] == changed["due_at"] + timedelta(days=1096)).all()
    assert (changed["paid_amount"] == changed["amount"]).all()
    kept = off.join(late.select("obligation_id"), on="obligation_id", how="anti")
    assert kept.equals(base.join(late.select("obligation_id"), on="obligation_id", how="anti"))


def test_the_oldest_overdue_age_is_bounded_and_stops_growing(
    runs: tuple[SimulationResult, SimulationResult],
) -> None:
    base, off = (_obligations(r) for r in runs)
    ends = [date(y, 12, 31) for y in (2018, 2020, 2022, 2024)]
    base_median = [float(_oldest_overdue_days(base, t).median()) for t in ends]  # type: ignore[arg-type]
    off_days = [_oldest_overdue_days(off, t) for t in ends]
    assert base_median[-1] > base_median[0] + 700  # without: ages with the calendar
    assert all(int(d.max()) <= round(YEARS * 365.25) for d in off_days)  # type: ignore[operator]
    off_median = [float(d.median()) for d in off_days]  # type: ignore[arg-type]
    assert max(off_median) - min(off_median) < 250
