"""A table ingested in buckets of its version key stores exactly what a whole-table ingest
stores: the same reports, the same quarantine, the same versions (as a set of rows) after a
first and a correcting second delivery, and the same features as of any date."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from features.contract import TABLE_ORDER, TABLES
from features.frames.builder import Population, collect_features
from features.frames.definitions import load_spec
from features.ingest import buckets, ingest_delivery, pipeline
from features.ingest.buckets import bucket_of, buckets_for, split_by_bucket
from features.simulator import SimulatorConfig, simulate
from features.store.offline import OfflineStore
from tests.factories import write_delivery
from tests.unit.features.test_ingest_conservation import CORRUPTIONS, _delivery

START = date(2016, 1, 1)
FIRST = date(2025, 12, 31)
SECOND = date(2026, 12, 31)


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns, nulls_last=True)


def _same_store(whole: Path, bucketed: Path) -> None:
    a, b = OfflineStore(whole), OfflineStore(bucketed)
    sa_, sb = a.state(), b.state()
    assert sa_.tables.keys() == sb.tables.keys()
    for name in sa_.tables:
        left = pl.read_parquet(a.root / sa_.tables[name])
        right = pl.read_parquet(b.root / sb.tables[name])
        assert left.schema == right.schema, name
        assert_frame_equal(_sorted(left), _sorted(right))
    for extract, files in sa_.quarantine.items():
        for name, rel in files.items():  # the quarantine keeps file order in both
            left = pl.read_parquet(a.root / rel)
            right = pl.read_parquet(b.root / sb.quarantine[extract][name])
            assert_frame_equal(left, right)
    assert not (b.root / ".ingest").exists() or not any((b.root / ".ingest").iterdir())


def _report(report: object) -> dict[str, object]:
    dumped = report.model_dump()  # type: ignore[attr-defined]
    dumped.pop("ingested_at")
    return dumped


@pytest.fixture(scope="module")
def deliveries(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A simulated world with 3 % invalid rows, then a later delivery correcting, dropping
    and doubling rows."""
    cfg = SimulatorConfig.model_validate(
        {"corrections": {"category_error_share": 0.2, "double_entry_share": 0.1}}
    )
    out = tmp_path_factory.mktemp("buckets") / "d1"
    made = simulate(
        out, 1500, 3, START, FIRST, second_delivery_at=SECOND, config=cfg, corrupt_rate=0.03
    )
    assert made.second_delivery is not None
    return made.delivery, made.second_delivery


def test_two_deliveries_store_the_same_versions_and_features(
    deliveries: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = deliveries
    cut_tables: list[str] = []

    def spy(job: Any, **kwargs: Any) -> Any:
        cut_tables.append(job.t.name)
        return buckets.bucketed_versions(job, **kwargs)

    monkeypatch.setattr(pipeline, "bucketed_versions", spy)
    whole, bucketed = tmp_path / "whole", tmp_path / "bucketed"
    for delivery in (first, second):
        one = ingest_delivery(delivery, whole)
        cut = ingest_delivery(delivery, bucketed, bucket_rows=400)
        assert _report(one) == _report(cut)
        _same_store(whole, bucketed)
        large = {name for name, counts in cut.tables.items() if counts.rows_in > 400}
        assert {"persons", "social_status", "admin_offences"} <= large
        assert set(cut_tables) == large  # every large table was cut, no other
        cut_tables.clear()
    spec = load_spec(None)
    for day in (date(2024, 6, 30), date(2026, 6, 30)):
        left = collect_features(OfflineStore(whole), spec, [day], Population.ALL)
        right = collect_features(OfflineStore(bucketed), spec, [day], Population.ALL)
        assert_frame_equal(left.sort("person_id"), right.sort("person_id"))


@settings(max_examples=8, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    damage=st.lists(
        st.tuples(st.sampled_from(CORRUPTIONS), st.sampled_from(TABLE_ORDER), st.integers(0, 1000)),
        max_size=10,
    ),
)
def test_corrupted_deliveries_are_classified_alike(
    seed: int, damage: list[tuple[str, str, int]]
) -> None:
    """Duplicates, id conflicts, unknown persons, bad values: each row has the same fate."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        frames = _delivery(seed, 6, damage)
        write_delivery(root / "d", frames, extract_id=f"x{seed}")
        one = ingest_delivery(root / "d", root / "whole")
        cut = ingest_delivery(root / "d", root / "bucketed", bucket_rows=2)
        assert _report(one) == _report(cut)
        _same_store(root / "whole", root / "bucketed")


def test_the_split_streams_every_row_once_into_its_key_bucket(tmp_path: Path) -> None:
    t = TABLES["social_status"]
    frame = pl.DataFrame(
        {
            "person_id": [f"P{i % 37}" for i in range(1000)],
            "status": ["employed", "unemployed"] * 500,
            "valid_from": [date(2020, 1, 1 + i % 28) for i in range(1000)],
            "_row": list(range(1, 1001)),
        }
    )
    paths = split_by_bucket(frame.lazy(), bucket_of(t, 5), 5, tmp_path, batch_rows=128)
    parts = [pl.read_parquet(p) for p in paths]
    assert sum(p.height for p in parts) == 1000
    for part in parts:
        assert part["_row"].is_sorted()  # each bucket keeps the rows' order
    keys = [set(p.select(t.version_key).iter_rows()) for p in parts]
    for i, left in enumerate(keys):  # a key lives in one bucket only
        for right in keys[i + 1 :]:
            assert not left & right
    assert buckets_for(1000, 300) == 4 and buckets_for(0, 300) == 1
    with pytest.raises(ValueError, match="bucket_rows"):
        buckets_for(10, 0)


def test_the_third_party_delivery_reads_alike_in_buckets(tmp_path: Path) -> None:
    """A delivery made by a system that is not ours (CSV and Parquet as it sent them)."""
    delivery = Path(__file__).parents[2] / "fixtures" / "third-party-delivery" / "delivery-2025-12"
    one = ingest_delivery(delivery, tmp_path / "whole")
    cut = ingest_delivery(delivery, tmp_path / "bucketed", bucket_rows=3)
    assert _report(one) == _report(cut)
    _same_store(tmp_path / "whole", tmp_path / "bucketed")
