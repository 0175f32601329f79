"""Training sets: snapshots whose horizon is not observed are refused; labels by (person, as_of)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from features.frames.definitions import load_spec
from features.store.offline import OfflineStore
from riskcast.errors import ConfigError
from tests.training_helpers import tiny_delivery
from training.dataset import build_dataset, dataset_digest
from training.labels import LabelDefinition

LABEL = LabelDefinition(description="any", horizon_days=365)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[OfflineStore, Path]:
    delivery, home = tiny_delivery(tmp_path_factory.mktemp("ds"), persons=1500)
    return OfflineStore(home), delivery


def test_unobserved_horizon_is_refused_naming_the_snapshot(store) -> None:
    offline, _ = store
    with pytest.raises(ConfigError, match=r"as_of 2025-03-31: the 365-day label window ends"):
        build_dataset(
            offline, load_spec(), [date(2024, 12, 31), date(2025, 3, 31)], "with_record", LABEL, "x"
        )


def test_labels_match_the_simulator_truth(store) -> None:
    offline, delivery = store
    ds = build_dataset(offline, load_spec(), [date(2024, 12, 31)], "with_record", LABEL, "x")
    truth = pl.read_parquet(delivery.with_name("d1_truth") / "labels.parquet")
    joined = ds.frame.select("person_id", "as_of", "label").join(
        truth.select("person_id", "as_of", pl.col("label").alias("truth")),
        on=["person_id", "as_of"],
    )
    assert joined.height == ds.frame.height > 0
    np.testing.assert_array_equal(joined["label"].cast(pl.Boolean), joined["truth"])
    assert "ethnicity" not in ds.features and "ethnicity" in ds.protected
    assert ds.digest == dataset_digest(ds.frame.sample(fraction=1.0, shuffle=True, seed=1))
    assert ds.digest != dataset_digest(ds.frame.head(ds.frame.height - 1))
