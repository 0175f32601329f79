"""The simulator's memory is bounded by its chunks, not by the country (issue 14 §2).

Persons are simulated and written a chunk at a time; the places truth integrates the
near-repeat part a block of past events at a time and keeps only the incidents its window
reads. Blocks change nothing: the truth in blocks equals the truth in one block, value for
value. Person chunks do change the draws (each chunk has its own seed stream, documented in
the simulator's README), so a chunked and an unchunked delivery are compared by the contract:
the same persons, every control passed, the ledger matching.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from features.contract import TABLE_ORDER
from features.simulator import SimulationResult, SimulatorConfig, places_truth, population, simulate
from features.simulator.codes import DISTRICTS
from features.simulator.places import build_world, incident_blocks
from features.simulator.places_hotspots import Releases
from features.simulator.places_truth import TruthWindow, intensity_frame, window_incidents
from features.simulator.timebase import day_of
from tests.unit.features.controls_reference import expected_ingest

START = date(2016, 1, 1)
EXTRACTED = date(2025, 12, 31)
AS_OF = [date(2024, 12, 31)]


def _places_inputs(persons: int) -> dict[str, Any]:
    """The inputs `simulate` hands `intensity_frame`, for `persons` (places only: fast)."""
    cfg = SimulatorConfig()
    pc = cfg.places
    first, last = day_of(START), day_of(EXTRACTED)
    seeds = np.random.SeedSequence(5, spawn_key=(2,)).spawn(7)
    rngs = [np.random.default_rng(s) for s in seeds]
    world = build_world(rngs[0], pc, cfg.population.region_shares, first, last, seeds[4])
    releases = Releases(np.array([last - 500, last - 300, last - 40]), np.array([0, 1, 6]))
    window = TruthWindow.of(AS_OF, last, pc.truth_years_before)
    realised = list(incident_blocks(rngs[1], world, pc, persons, last, releases, rngs[5]))
    return {
        "world": world,
        "cfg": pc,
        "persons": persons,
        "releases": releases,
        "realised": realised,
        "window": window,
        "state": rngs[6].bit_generator.state,
    }


@pytest.fixture(scope="module")
def places() -> dict[str, Any]:
    return _places_inputs(20_000)


def _truth(inputs: dict[str, Any], block_events: int, trimmed: bool = False) -> pl.DataFrame:
    rng = np.random.default_rng()
    rng.bit_generator.state = inputs["state"]  # the same stream for every call
    realised = inputs["realised"]
    if trimmed:
        first = inputs["world"].first_day
        realised = [window_incidents(r, inputs["window"], first) for r in realised]
    return intensity_frame(
        inputs["world"],
        inputs["cfg"],
        inputs["persons"],
        inputs["releases"],
        realised,
        inputs["window"],
        rng,
        block_events=block_events,
    )


def test_the_places_truth_in_blocks_is_the_truth_in_one_block(places: dict[str, Any]) -> None:
    whole = _truth(places, block_events=10**9)
    past_events = sum(len(r.counter) for r in places["realised"])
    assert whole.height > 10_000 and past_events > 3_000
    for block in (997, 250):  # several blocks, the last one partial
        blocked = _truth(places, block_events=block, trimmed=True)
        assert blocked.equals(whole), block
    # keeping only the window's incidents (as the run does) changes nothing either
    assert _truth(places, block_events=10**9, trimmed=True).equals(whole)


def test_the_window_keeps_only_recent_incidents(places: dict[str, Any]) -> None:
    first = places["world"].first_day
    kept = [window_incidents(r, places["window"], first) for r in places["realised"]]
    n_all = sum(len(r.counter) for r in places["realised"])
    n_kept = sum(len(r.counter) for r in kept)
    assert 0 < n_kept < 0.35 * n_all  # the last ~2 of 10 years
    assert len(kept[0].counter) == 0 and len(kept[-1].counter) == len(
        places["realised"][-1].counter
    )


def test_a_block_holds_at_most_its_events(
    places: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory of the truth's near-repeat part is per block: every product it forms has at most
    the fixed head (districts, episodes) plus `block_events` past and late events as rows."""
    seen: list[tuple[int, int]] = []
    inner = places_truth._cell_sums

    def spy(
        cells: np.ndarray, comp: np.ndarray, weight: np.ndarray, weekly: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        seen.append((len(cells), weekly.shape[0]))
        return inner(cells, comp, weight, weekly)

    monkeypatch.setattr(places_truth, "_cell_sums", spy)
    block = 300
    _truth(places, block_events=block)
    per_res = seen[::2]  # two resolutions per block, the same points
    past = sum(len(r.counter) for r in places["realised"])
    assert len(per_res) >= 5
    head = len(DISTRICTS) + len(places["world"].episodes.district)  # fixed, whatever persons
    assert per_res[0][1] <= head + 2 * block
    for points, rows in per_res[1:]:
        assert rows <= 2 * block  # past events and late registrations of one block
        assert points <= block * (places_truth._NR_POINTS + 1)
    assert max(rows for _, rows in per_res) < past / 2


def test_persons_are_simulated_a_chunk_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held: list[int] = []
    inner = population.draw_population

    def spy(rng: np.random.Generator, cfg: SimulatorConfig, lo: int, n: int, *a: int) -> Any:
        held.append(n)
        return inner(rng, cfg, lo, n, *a)

    monkeypatch.setattr("features.simulator.run.draw_population", spy)
    simulate(tmp_path / "d", 1300, 3, START, EXTRACTED, as_of=AS_OF, chunk_size=300)
    assert held == [300, 300, 300, 300, 100]


def _contract_view(result: SimulationResult) -> dict[str, Any]:
    counts = expected_ingest(result.delivery)
    ledger = json.loads((result.truth / "expected-ingest.json").read_text())
    return {"counts": counts, "ledger": ledger}


def test_a_chunked_delivery_is_contract_equivalent_to_an_unchunked_one(tmp_path: Path) -> None:
    """Chunks have their own seed streams, so the draws differ; what the contract promises
    holds for both: the same persons, every row accepted, the ledger the recount."""
    one = simulate(tmp_path / "one", 1200, 9, START, EXTRACTED, as_of=AS_OF, chunk_size=1200)
    three = simulate(tmp_path / "three", 1200, 9, START, EXTRACTED, as_of=AS_OF, chunk_size=400)
    ids = [pl.read_parquet(r.delivery / "persons.parquet")["person_id"] for r in (one, three)]
    assert ids[0].sort().equals(ids[1].sort()) and ids[0].n_unique() == 1200
    for result in (one, three):
        view = _contract_view(result)
        assert view["ledger"] == view["counts"]
        for name in TABLE_ORDER:
            c = view["counts"]["tables"][name]
            assert c["quarantined"] == 0 and c["duplicates_dropped"] == 0, name
            assert c["accepted"] == result.rows[name]
        labels = pl.read_parquet(result.truth / "labels.parquet")
        assert labels.height == 1200 and labels["person_id"].n_unique() == 1200
    # the appeals come from the run's places stream alone: the same bytes whatever the chunks
    files = [(r.delivery / "appeals.parquet").read_bytes() for r in (one, three)]
    assert files[0] == files[1]
