"""Injected invalid rows match their ledger; a second delivery corrects and drops rows."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from features.contract import TABLE_ORDER, TABLES, RuleContext, rules_for
from features.contract.manifest import read_manifest
from features.simulator import SimulationResult, SimulatorConfig, simulate
from features.simulator.damages import declared_rules
from features.simulator.successive import row_key
from tests.unit.features.controls_reference import expected_ingest, flag_rules, load_table

START = date(2016, 1, 1)
EXTRACTED = date(2025, 12, 31)
SECOND = date(2026, 12, 31)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[SimulationResult, SimulationResult]:
    """The same world twice: clean, and with 3 % invalid rows."""
    root = tmp_path_factory.mktemp("corrupt")
    clean = simulate(root / "clean", 2500, 4, START, EXTRACTED, chunk_size=1300)
    dirty = simulate(root / "dirty", 2500, 4, START, EXTRACTED, chunk_size=1300, corrupt_rate=0.03)
    return clean, dirty


def test_the_ledger_equals_a_recount_with_the_contract_rules(
    pair: tuple[SimulationResult, SimulationResult],
) -> None:
    _, dirty = pair
    ledger = json.loads((dirty.truth / "expected-ingest.json").read_text())
    assert ledger == expected_ingest(dirty.delivery)
    assert ledger["extract_id"] == read_manifest(dirty.delivery).extract_id
    for name in TABLE_ORDER:
        t = ledger["tables"][name]
        assert t["rows_in"] == t["accepted"] + t["quarantined"] + t["duplicates_dropped"]
        assert t["quarantined"] > 0 and t["duplicates_dropped"] > 0, name
        assert set(t["rules"]) == declared_rules(name, "parquet"), name  # every kind is present
    rules = ledger["tables"]["obligations"]["rules"]
    assert rules["obligations.paid_le_amount"] > rules["obligations.amount_positive"]


def test_damage_is_added_never_applied_to_real_rows(
    pair: tuple[SimulationResult, SimulationResult],
) -> None:
    clean, dirty = pair
    assert _bytes_of_truth(clean) == _bytes_of_truth(dirty)
    ctx = RuleContext(read_manifest(dirty.delivery).extracted_at)
    persons: pl.DataFrame | None = None
    for name in TABLE_ORDER:
        raw = load_table(name, dirty.delivery / f"{name}.parquet").unique(maintain_order=True)
        flagged = flag_rules(name, raw, ctx, persons)
        ids = [r.id for r in rules_for(name)]
        accepted = flagged.filter(~pl.any_horizontal(ids)).select(TABLES[name].column_names)
        if name == "persons":
            persons = accepted
        original = pl.read_parquet(clean.delivery / f"{name}.parquet")
        key = [*TABLES[name].column_names]
        assert accepted.sort(key).equals(original.sort(key)), name


def _bytes_of_truth(r: SimulationResult) -> dict[str, bytes]:
    return {n: (r.truth / f"{n}.parquet").read_bytes() for n in ("labels", "persons", "offences")}


@pytest.fixture(scope="module")
def successive(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    cfg = SimulatorConfig.model_validate(
        {"corrections": {"category_error_share": 0.2, "double_entry_share": 0.1}}
    )
    out = tmp_path_factory.mktemp("succ") / "d1"
    return simulate(out, 2500, 8, START, EXTRACTED, second_delivery_at=SECOND, config=cfg)


def test_the_second_delivery_is_a_later_valid_full_delivery(successive: SimulationResult) -> None:
    assert successive.second_delivery == successive.delivery.parent / "d1_2"
    first = read_manifest(successive.delivery)
    second = read_manifest(successive.second_delivery)
    assert second.extracted_at > first.extracted_at
    assert second.extract_id == "2026-12-31-sim-s8"
    counts = expected_ingest(successive.second_delivery)
    for name, c in counts["tables"].items():
        assert c["quarantined"] == 0 and c["duplicates_dropped"] == 0, name
    cases = pl.read_parquet(successive.second_delivery / "criminal_cases.parquet")
    assert cases.filter(pl.col("registered_at") > first.extracted_at).height > 0  # new rows


def test_changes_list_every_correction_and_drop(successive: SimulationResult) -> None:
    assert successive.second_delivery is not None
    changes = pl.read_parquet(successive.truth / "changes.parquet")
    seen: set[tuple[str, str]] = set()
    for name in TABLE_ORDER:
        a = pl.read_parquet(successive.delivery / f"{name}.parquet")
        b = pl.read_parquet(successive.second_delivery / f"{name}.parquet")
        ka = a.select(row_key(name).alias("k"), pl.struct(pl.all()).alias("row"))
        kb = b.select(row_key(name).alias("k"), pl.struct(pl.all()).alias("row"))
        j = ka.join(kb, on="k", how="left")
        dropped = set(j.filter(pl.col("row_right").is_null())["k"])
        corrected = set(
            j.filter(
                pl.col("row_right").is_not_null() & pl.col("row").ne_missing(pl.col("row_right"))
            )["k"]
        )
        mine = changes.filter(pl.col("table") == name)
        assert set(mine.filter(pl.col("change") == "dropped")["key"]) == dropped, name
        assert set(mine.filter(pl.col("change") == "corrected")["key"]) == corrected, name
        for row in mine.filter(pl.col("change") == "corrected").iter_rows(named=True):
            seen.update((name, c) for c in row["columns"].split(","))
    assert {
        ("criminal_cases", "outcome"),
        ("criminal_cases", "category"),
        ("obligations", "paid_amount"),
        ("social_status", "valid_to"),
    } <= seen
    drops = changes.filter(pl.col("change") == "dropped")
    assert {"criminal_cases", "admin_offences"} <= set(drops["table"])
    assert drops["reason"].null_count() == 0


def test_double_entries_repeat_a_case_with_its_registration_time(
    successive: SimulationResult,
) -> None:
    cases = pl.read_parquet(successive.delivery / "criminal_cases.parquet")
    doubles = cases.filter(pl.struct(pl.exclude("record_id")).is_duplicated())
    assert doubles.height > 0  # erroneous double entries: same case, same registration time
    assert doubles.group_by(pl.exclude("record_id")).len()["len"].min() == 2


def test_the_first_delivery_does_not_depend_on_simulating_a_second(
    tmp_path: Path, successive: SimulationResult
) -> None:
    cfg = SimulatorConfig.model_validate(
        {"corrections": {"category_error_share": 0.2, "double_entry_share": 0.1}}
    )
    alone = simulate(tmp_path / "d1", 2500, 8, START, EXTRACTED, config=cfg)
    for path in sorted(alone.delivery.iterdir()):
        assert path.read_bytes() == (successive.delivery / path.name).read_bytes(), path.name
    for name in ("labels.parquet", "expected-ingest.json"):
        assert (alone.truth / name).read_bytes() == (successive.truth / name).read_bytes()
