"""Exposure by district on seeded synthetic predictions: a district the map floods with
flagged area far beyond its incidents is flagged; an honest map flags none; residents' shares
come from persons per district (null without persons)."""

from __future__ import annotations

import polars as pl
import pytest

from fairness.places.exposure import exposure_by_district, residents_by_district
from fairness.places.metrics import check_predictions
from fairness.places.synthetic import Scenario, predictions
from fairness.policy import PlacesPolicy, load_policy

SCENARIO = Scenario(seed=3)
QUIET = "R2-D3"  # a district with few hotspots (about 5 % of the incidents)


@pytest.fixture(scope="module")
def policy() -> PlacesPolicy:
    places = load_policy().places
    assert places is not None
    return places


def test_a_district_flooded_beyond_its_incidents_is_flagged(policy: PlacesPolicy) -> None:
    frame = check_predictions(predictions(SCENARIO, noise=0.2, seed=1, inflate={QUIET: 25.0}))
    rows = {r.district: r for r in exposure_by_district(frame, policy)}
    quiet = rows[QUIET]
    assert quiet.status == "flagged"
    assert quiet.flagged_area_share > 5 * quiet.incident_share
    assert quiet.ratio.low is not None and quiet.ratio.low > policy.exposure.max_ratio
    assert [d for d, r in rows.items() if r.status == "flagged"] == [QUIET]
    assert sum(r.flagged_area_share for r in rows.values()) == pytest.approx(1.0)
    assert sum(r.incident_share for r in rows.values()) == pytest.approx(1.0)
    assert quiet.resident_share is None and quiet.resident_ratio is None


def test_an_honest_map_flags_no_district(policy: PlacesPolicy) -> None:
    frame = check_predictions(predictions(SCENARIO, noise=0.2, seed=1))
    rows = exposure_by_district(frame, policy)
    assert len(rows) == len(SCENARIO.regions) * SCENARIO.districts
    assert all(r.status != "flagged" for r in rows)
    again = exposure_by_district(frame, policy)
    assert again == rows  # seeded intervals


def test_resident_shares_from_persons(policy: PlacesPolicy) -> None:
    frame = check_predictions(predictions(SCENARIO, noise=0.2, seed=1))
    districts = frame.select("region", "district").unique().sort("district")
    persons = pl.concat([districts.with_columns(pl.lit(i).alias("n")) for i in range(1, 4)]).filter(
        pl.col("n") <= pl.int_range(pl.len()).over("region") + 1
    )
    persons = pl.concat([persons.drop("n"), pl.DataFrame(
        {"region": ["R1"], "district": [None]}, schema={"region": pl.String, "district": pl.String}
    )])  # fmt: skip
    residents = residents_by_district(persons)
    rows = exposure_by_district(frame, policy, residents)
    shares = [r.resident_share for r in rows]
    assert all(s is not None and s > 0 for s in shares)
    assert sum(s for s in shares if s is not None) == pytest.approx(1.0)
    first = next(r for r in rows if r.district == "R1-D1")
    assert first.resident_ratio == pytest.approx(
        first.flagged_area_share / first.resident_share  # type: ignore[operator]
    )
