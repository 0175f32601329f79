"""`riskcast features build | materialize | list` on a small ingested delivery."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from features.frames.definitions import load_spec
from features.ingest import ingest_delivery
from features.online import SqlOnlineStore
from riskcast.settings import get_settings
from serving.cli import build_app
from tests.factories import write_delivery
from tests.unit.features.test_features_golden import REPO, delivery_tables

SPEC = load_spec(REPO / "configs" / "features.yaml")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    ingest_delivery(write_delivery(tmp_path / "d1", delivery_tables()), home)
    monkeypatch.setenv("RISKCAST_HOME", str(home))
    monkeypatch.delenv("RISKCAST_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


def test_build_writes_parquet(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "features.parquet"
    result = CliRunner().invoke(
        build_app(),
        [
            "features", "build",
            "--as-of", "2025-06-30", "--as-of", "2025-02-28",
            "--population", "with_record",
            "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    frame = pl.read_parquet(out)
    assert frame.columns == ["person_id", "as_of", *SPEC.names]
    assert frame.select("as_of", "person_id").rows() == [
        (date(2025, 2, 28), "P1"),
        (date(2025, 2, 28), "P2"),
        (date(2025, 6, 30), "P1"),
        (date(2025, 6, 30), "P2"),
    ]


def test_materialize_writes_model_inputs_only(home: Path) -> None:
    result = CliRunner().invoke(build_app(), ["features", "materialize", "--as-of", "2025-06-30"])
    assert result.exit_code == 0, result.output
    online = SqlOnlineStore(f"sqlite:///{home / 'riskcast.sqlite'}")
    vectors = online.get_vectors(["P3", "P1"])
    online.dispose()
    assert vectors["person_id"].to_list() == ["P3", "P1"]
    assert vectors["cases_total"].to_list() == [0, 4]
    assert "ethnicity" not in vectors.columns and "sex" not in vectors.columns
    assert set(SPEC.model_inputs()) <= set(vectors.columns)
    assert set(vectors["spec_hash"]) == {SPEC.spec_hash()}


def test_list_shows_metadata(home: Path) -> None:
    result = CliRunner().invoke(build_app(), ["features", "list"])
    assert result.exit_code == 0, result.output
    assert "cases_365d" in result.output and "violence_escalation" in result.output
    assert f"{len(SPEC.features)} features ({len(SPEC.model_inputs())} model inputs)" in (
        result.output
    )


def test_bad_config_is_a_clear_error(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "features.yaml"
    bad.write_text("version: 2\nfeatures: []\n", encoding="utf-8")
    result = CliRunner().invoke(build_app(), ["features", "list", "--config", str(bad)])
    assert result.exit_code != 0
    assert "version" in str(result.exception)
