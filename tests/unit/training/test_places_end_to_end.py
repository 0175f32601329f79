"""`riskcast places train` on a small simulated store registers a challenger, and `places
forecast --as-of T` writes the documented columns using nothing known after T (the same
forecast from the store cut at T)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from features.contract import TABLES
from features.ingest import ingest_delivery
from features.simulator import simulate
from features.store.offline import end_of_day
from serving.cli import build_app
from tests.factories import write_delivery
from tests.service_helpers import environment
from training.places.forecast import FORECAST_COLUMNS
from training.places.registry import TEST_PREDICTIONS, download_run_artifact, load_places_model

T = date(2025, 6, 29)  # a Sunday, months before the extraction
SMALL = {
    "horizons": 8,
    "origins": {"test_weeks": 4, "train_weeks": 24, "train_every_weeks": 3},
    "folds": {"n_folds": 1, "valid_origins": 2},
    "search": {
        "objectives": ["poisson", "tweedie"],
        "num_boost_round": 40,
        "early_stopping_rounds": 10,
        "startup_trials": 2,
        "pruning_warmup_trials": 1,
        "max_train_rows": 20000,
        "fixed": {"max_bin": 31},
        "params": {
            "learning_rate": {"type": "float", "low": 0.05, "high": 0.2, "log": True},
            "num_leaves": {"type": "int", "low": 4, "high": 16},
            "tweedie_variance_power": {"type": "float", "low": 1.1, "high": 1.6},
        },
    },
    "trials": 2,
    "seed": 5,
    "num_threads": 1,
    "baselines": {"kde_bandwidths_km": [0.5], "kde_weeks": [13], "hawkes_taus_weeks": [2.0]},
    "bootstrap": 200,
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    root = tmp_path_factory.mktemp("places")
    delivery, home = root / "d1", root / "home"
    simulate(
        delivery,
        persons=20_000,
        seed=13,
        start=date(2019, 1, 1),
        extracted_at=date(2025, 12, 31),
        as_of=[date(2024, 12, 31)],
    )
    ingest_delivery(delivery, home)
    config = root / "places_training.yaml"
    config.write_text(yaml.safe_dump(SMALL), encoding="utf-8")
    with environment(RISKCAST_HOME=str(home), MLFLOW_TRACKING_URI=None):
        result = CliRunner().invoke(build_app(), ["places", "train", "--config", str(config)])
        yield {"root": root, "home": home, "delivery": delivery, "config": config, "result": result}


def test_train_registers_a_challenger_and_logs_test_predictions(trained: dict[str, object]) -> None:
    result = trained["result"]
    assert result.exit_code == 0, result.output + repr(result.exception)  # type: ignore[attr-defined]
    out = result.output  # type: ignore[attr-defined]
    for scorer in ("model", "last4", "kde", "hawkes"):
        assert scorer in out
    assert "street-crime v" in out and "(alias challenger)" in out
    home = trained["home"]
    assert isinstance(home, Path)
    loaded = load_places_model("street-crime", "challenger", home=home)
    assert loaded.model.horizons == 8 and "horizon" in loaded.model.features
    preds = pl.read_parquet(download_run_artifact(loaded.run_id, TEST_PREDICTIONS, home=home))
    assert preds.columns[:7] == [
        "cell_id",
        "region",
        "district",
        "week_start",
        "area_km2",
        "observed",
        "expected_count",
    ]
    assert {"baseline_last4", "baseline_kde", "baseline_hawkes"} <= set(preds.columns)
    assert preds["week_start"].n_unique() == 4


def _cut_delivery(source: Path, target: Path, as_of: date) -> Path:
    """The delivery as an extraction at the end of ``as_of`` would have held it."""
    cutoff = end_of_day(as_of)
    tables = {}
    for name, table in TABLES.items():
        path = source / f"{name}.parquet"
        if not path.is_file():
            continue
        frame = pl.read_parquet(path)
        if table.knowledge_time is not None:
            frame = frame.filter(pl.col(table.knowledge_time) < cutoff)
        tables[name] = frame
    stamp = datetime.combine(as_of, datetime.min.time(), tzinfo=UTC) + timedelta(
        hours=23, minutes=59, seconds=59
    )
    return write_delivery(target, tables, extract_id=f"cut-{as_of}", extracted_at=stamp)


def test_forecast_writes_the_columns_and_uses_nothing_after_t(trained: dict[str, object]) -> None:
    root, home = trained["root"], trained["home"]
    assert isinstance(root, Path) and isinstance(home, Path)
    runner = CliRunner()
    full_out = root / "full.parquet"
    args = ["places", "forecast", "--as-of", str(T), "--weeks", "8", "--alias", "challenger"]
    got = runner.invoke(
        build_app(), [*args, "--out", str(full_out), "--config", str(trained["config"])]
    )
    assert got.exit_code == 0, got.output + repr(got.exception)
    full = pl.read_parquet(full_out)
    assert tuple(full.columns) == FORECAST_COLUMNS
    assert full["horizon"].unique().sort().to_list() == list(range(1, 9))
    assert full.group_by("cell_id").len()["len"].unique().to_list() == [8]
    assert (full["lower_80"] <= full["expected_count"] + 1).all()
    assert (full["upper_80"] >= full["lower_80"]).all()
    reasons = json.loads(full["reasons"][0])
    assert len(reasons) == 3 and set(reasons[0]) == {
        "feature",
        "description",
        "value",
        "contribution",
    }

    cut_home = root / "cut-home"
    ingest_delivery(_cut_delivery(trained["delivery"], root / "cut", T), cut_home)  # type: ignore[arg-type]
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{(home / 'mlflow.db').resolve()}"
    try:
        cut_out = root / "cut.parquet"
        got = runner.invoke(
            build_app(),
            [
                *args,
                "--out",
                str(cut_out),
                "--home",
                str(cut_home),
                "--config",
                str(trained["config"]),
            ],
        )
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    assert got.exit_code == 0, got.output + repr(got.exception)
    cut = pl.read_parquet(cut_out)
    keys = ["cell_id", "horizon"]
    assert cut.sort(keys).drop("reasons").equals(full.sort(keys).drop("reasons"))

    too_far = runner.invoke(
        build_app(),
        [
            "places",
            "forecast",
            "--as-of",
            str(T),
            "--weeks",
            "9",
            "--out",
            str(full_out),
            "--home",
            str(home),
        ],
    )
    assert too_far.exit_code != 0
    assert "--weeks 9" in str(too_far.exception)
