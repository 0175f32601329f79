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


def test_the_stack_built_in_batches_of_snapshots_equals_the_stack_built_at_once(
    store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batching bounds memory by a few snapshots; it must not change a row or the order."""
    import training.dataset as dataset

    offline, _ = store
    dates = [date(2023, 3, 31), date(2023, 6, 30), date(2023, 9, 30), date(2023, 12, 31)]

    def stack(per_batch: int) -> pl.DataFrame:
        monkeypatch.setattr(dataset, "STACK_DATES_PER_BATCH", per_batch)
        return build_dataset(offline, load_spec(), dates, "with_record", LABEL, "x", 18).frame

    whole, single, pairs = stack(len(dates)), stack(1), stack(3)
    assert sorted(set(whole["as_of"].to_list())) == dates
    assert whole.height > 0
    assert single.equals(whole) and pairs.equals(whole)
    assert dataset_digest(single) == dataset_digest(whole)


def test_a_large_register_is_stacked_one_date_at_a_time(
    store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch is bounded in person-dates too: a nation's register gets one date per build
    (4 dates of 10M persons peaked at 16.9 GB), and the rows stay the same."""
    import training.dataset as dataset

    assert dataset.dates_per_batch(0) == dataset.STACK_DATES_PER_BATCH
    assert dataset.dates_per_batch(1_000_000) == 4
    assert dataset.dates_per_batch(2_000_000) == 2
    assert dataset.dates_per_batch(10_000_000) == 1
    offline, _ = store
    dates = [date(2023, 3, 31), date(2023, 6, 30), date(2023, 9, 30)]
    batches: list[int] = []
    real = dataset._labelled_rows

    def counting(store_: object, spec: object, batch: list[date], *args: object) -> pl.DataFrame:
        batches.append(len(batch))
        return real(store_, spec, batch, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(dataset, "_labelled_rows", counting)
    together = build_dataset(offline, load_spec(), dates, "with_record", LABEL, "x", 18).frame
    assert batches == [3]
    monkeypatch.setattr(dataset, "STACK_PERSON_DATES", 1)  # any register is "large"
    batches.clear()
    apart = build_dataset(offline, load_spec(), dates, "with_record", LABEL, "x", 18).frame
    assert batches == [1, 1, 1]
    assert apart.equals(together)
