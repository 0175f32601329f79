"""A registration-practice change (`crime.practice_changes`): from its date the region's
police record low-gravity offences more often; nothing else moves, offending least of all."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from features.simulator import SimulationResult, SimulatorConfig, simulate

START = date(2016, 1, 1)
EXTRACTED = date(2024, 12, 31)
CHANGE = date(2018, 1, 1)
AS_OF = [date(2022, 12, 31)]
LOW = ["misdemeanour", "minor"]


def _config(changes: list[dict[str, object]]) -> SimulatorConfig:
    # No ethnic detection bias: the factor then is the practice change alone.
    return SimulatorConfig.model_validate(
        {"crime": {"detection_bias": [], "practice_changes": changes}}
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[SimulationResult, SimulationResult]:
    """The same world twice: without a change, and with ALA recording twice as often."""
    root = tmp_path_factory.mktemp("practice")
    change = {"region": "ALA", "from_date": CHANGE.isoformat(), "record_rate_multiplier": 2.0}
    return (
        simulate(root / "base", 20_000, 11, START, EXTRACTED, as_of=AS_OF, config=_config([])),
        simulate(
            root / "drift", 20_000, 11, START, EXTRACTED, as_of=AS_OF, config=_config([change])
        ),
    )


def _offences(result: SimulationResult) -> pl.DataFrame:
    persons = pl.read_parquet(result.truth / "persons.parquet").select("person_id", "region")
    return pl.read_parquet(result.truth / "offences.parquet").join(
        persons, on="person_id", how="left", maintain_order="left"
    )


def test_the_record_rate_doubles_in_the_region_after_the_date_only(
    runs: tuple[SimulationResult, SimulationResult],
) -> None:
    base, drift = (_offences(r) for r in runs)
    committed = ["person_id", "offence_date", "category", "article", "gravity"]
    assert base.select(committed).equals(drift.select(committed))  # offending is untouched
    target = (
        (base["region"] == "ALA") & (base["offence_date"] >= CHANGE) & base["gravity"].is_in(LOW)
    ).to_numpy()
    pb, pd = base["detect_prob"].to_numpy(), drift["detect_prob"].to_numpy()
    np.testing.assert_allclose(pd[target], np.minimum(0.98, 2.0 * pb[target]))
    assert (pd[~target] == pb[~target]).all()
    db, dd = base["detected"].to_numpy(), drift["detected"].to_numpy()
    assert (db[~target] == dd[~target]).all()  # elsewhere and before: the same registrations
    # Measured: offences whose doubled rate stays below the cap are recorded twice as often.
    uncapped = target & (pb <= 0.49)
    ratio = dd[uncapped].sum() / db[uncapped].sum()
    assert db[uncapped].sum() > 80
    assert 1.6 < ratio < 2.4, ratio


def test_registered_cases_rise_in_the_region_from_the_date(
    runs: tuple[SimulationResult, SimulationResult],
) -> None:
    def cases(result: SimulationResult) -> pl.DataFrame:
        persons = pl.read_parquet(result.delivery / "persons.parquet").select("person_id", "region")
        return (
            pl.read_parquet(result.delivery / "criminal_cases.parquet")
            .join(persons, on="person_id", how="left")
            .with_columns(after=pl.col("registered_at").dt.date() >= CHANGE)
            .group_by("region", "after")
            .len()
        )

    joined = cases(runs[0]).join(cases(runs[1]), on=["region", "after"], suffix="_drift")
    ratio = {
        (r, a): n2 / n1
        for r, a, n1, n2 in joined.select("region", "after", "len", "len_drift").rows()
    }
    for (region, after), value in ratio.items():
        if region == "ALA" and after:
            assert value > 1.2, value  # the delivered register records more
        elif region != "ALA" or not after:
            # Registered before the date means committed before it; elsewhere nothing moves.
            assert value == 1.0, (region, after, value)


def test_p_true_follows_the_new_practice(
    runs: tuple[SimulationResult, SimulationResult],
) -> None:
    def ala(result: SimulationResult) -> pl.DataFrame:
        persons = pl.read_parquet(result.truth / "persons.parquet").select("person_id", "region")
        return (
            pl.read_parquet(result.truth / "labels.parquet")
            .join(persons, on="person_id")
            .filter(pl.col("region") == "ALA")
        )

    base, drift = ala(runs[0]), ala(runs[1])
    assert drift["p_true"].mean() > 1.2 * base["p_true"].mean()  # type: ignore[operator]
    # Still honest: the mean probability matches the label rate within sampling error.
    p = drift["p_true"].to_numpy()
    sd = float(np.sqrt((p * (1 - p)).sum()))
    assert abs(drift["label"].sum() - p.sum()) < 3.5 * sd


def test_the_option_is_typed_and_absent_by_default() -> None:
    assert SimulatorConfig().crime.practice_changes == []
    assert "practice_changes" not in SimulatorConfig().model_dump(mode="json")["crime"]
    for bad in (
        {"region": "XXX", "from_date": "2021-01-01", "record_rate_multiplier": 2.0},
        {"region": "ALA", "from_date": "2021-01-15", "record_rate_multiplier": 2.0},
        {"region": "ALA", "from_date": "2021-01-01", "record_rate_multiplier": 0.0},
        {"region": "ALA", "from_date": "2021-01-01", "record_rate_multiplier": 2, "x": 1},
    ):
        with pytest.raises(ValidationError):
            _config([bad])
