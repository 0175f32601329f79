"""Labels count cases by knowledge time, in (end of T, end of T + H]."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from features.store.offline import OfflineStore
from riskcast.errors import ConfigError
from tests.factories import typed_frame
from training.labels import LabelDefinition, build_labels, label_cases, load_label_config

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "third-party-delivery"


def _case(person: str, registered: datetime, category: str = "property") -> dict[str, object]:
    return {
        "record_id": f"R-{person}-{registered:%Y%m%d%H%M%S}",
        "case_id": "C1",
        "person_id": person,
        "offence_date": date(2020, 1, 1),
        "registered_at": registered,
        "article": "185",
        "category": category,
        "gravity": "minor",
        "street": False,
        "outcome": "pending",
        "outcome_at": None,
        "region": "AST",
        "district": None,
    }


def test_window_is_end_of_day_exclusive_start_inclusive_end() -> None:
    cases = typed_frame(
        "criminal_cases",
        [
            _case("A", datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)),  # known at T: not new
            _case("B", datetime(2025, 1, 1, 0, 0, 0, tzinfo=UTC)),  # first instant after T
            _case("C", datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)),  # last instant of T+H
            _case("D", datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)),  # after the window
            _case("E", datetime(2025, 6, 1, tzinfo=UTC), category="violent"),
        ],
    )
    persons = pl.LazyFrame({"person_id": ["A", "B", "C", "D", "E", "F"]})
    any_case = LabelDefinition(description="any", horizon_days=365)
    labels = label_cases(cases.lazy(), persons, [date(2024, 12, 31)], any_case).collect()
    assert dict(zip(labels["person_id"], labels["label"], strict=True)) == {
        "A": False,
        "B": True,
        "C": True,
        "D": False,
        "E": True,
        "F": False,
    }
    violent = LabelDefinition(description="violent", horizon_days=365, categories=["violent"])
    labels = label_cases(cases.lazy(), persons, [date(2024, 12, 31)], violent).collect()
    assert labels.filter(pl.col("label"))["person_id"].to_list() == ["E"]


def test_unknown_category_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "labels.yaml"
    path.write_text(
        "labels:\n  x:\n    description: d\n    horizon_days: 30\n    categories: [arson]\n"
    )
    with pytest.raises(ConfigError, match="arson"):
        load_label_config(path)


def test_shipped_label_config_loads() -> None:
    config = load_label_config(Path(__file__).resolve().parents[3] / "configs" / "labels.yaml")
    assert config.labels["any_new_case_12m"].horizon_days == 365


def test_third_party_labels_agree(tmp_path: Path) -> None:
    from features.ingest import ingest_delivery

    ingest_delivery(FIXTURE / "delivery-2025-12", tmp_path)
    expected = pl.read_parquet(FIXTURE / "expected-labels.parquet")
    as_of = expected["as_of"].unique().to_list()
    assert len(as_of) == 1
    definition = LabelDefinition(description="any", horizon_days=int(expected["horizon_days"][0]))
    ours = build_labels(OfflineStore(tmp_path), as_of, definition).collect()
    joined = expected.join(ours, on=["person_id", "as_of"], how="left", suffix="_ours")
    # persons the controls quarantined have no label of ours; they have no cases either
    missing = joined.filter(pl.col("label_ours").is_null())
    assert missing["label"].sum() == 0
    both = joined.filter(pl.col("label_ours").is_not_null())
    assert both.height == ours.height
    assert (both["label"] == both["label_ours"]).all()
    assert both["label"].sum() > 0


def test_window_beyond_extraction_is_refused(tmp_path: Path) -> None:
    from features.ingest import ingest_delivery

    ingest_delivery(FIXTURE / "delivery-2025-12", tmp_path)
    definition = LabelDefinition(description="any", horizon_days=365)
    with pytest.raises(ConfigError, match="not fully observed"):
        build_labels(OfflineStore(tmp_path), [date(2025, 1, 1)], definition)
