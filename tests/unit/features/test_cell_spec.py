"""The cell feature spec (``configs/cell_features.yaml``): typed, refuses unknown keys naming the
field, describes every feature it declares, and has a digest of its meaning."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from features.cells.spec import CellSpec, load_cell_spec
from riskcast.errors import ConfigError


def _write(tmp_path: Path, raw: object) -> Path:
    path = tmp_path / "cell_features.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def _shipped() -> dict[str, object]:
    raw = yaml.safe_load(Path("configs/cell_features.yaml").read_text(encoding="utf-8"))
    assert isinstance(raw, dict)
    return raw


def test_the_shipped_spec_loads_and_declares_the_issue_features() -> None:
    spec = load_cell_spec(Path("configs/cell_features.yaml"))
    names = spec.model_inputs()
    assert 40 <= len(names) <= 90
    assert len(set(names)) == len(names)
    for lag in (1, 2, 4, 8, 13, 26, 52):
        assert f"count_all_lag{lag}" in names
    assert {"intensity_hl1w", "intensity_hl2w", "intensity_hl8w"} <= set(names)
    assert any(n.startswith("ring1_") for n in names) and any(n.startswith("ring2_") for n in names)
    assert {"week_sin", "week_cos", "holidays_in_week"} <= set(names)
    assert {f"district_appeals_violence_lag{k}" for k in (1, 2, 3, 4)} <= set(names)
    assert "district_admin_alcohol_4w" in names and "district_released_26w" in names
    assert any(n.startswith("count_theft_") for n in names)
    assert {"kernel_0p5km_260w", "kernel_0p25km_13w"} <= set(names)
    assert "district_appeals_violence_52w" in names


def test_every_feature_has_a_readable_description() -> None:
    spec = load_cell_spec(Path("configs/cell_features.yaml"))
    texts = spec.descriptions()
    assert list(texts) == spec.model_inputs()
    for name, text in texts.items():
        assert len(text) > 20 and text.strip() != name, (name, text)


def test_unknown_keys_are_refused_naming_the_field(tmp_path: Path) -> None:
    raw = _shipped()
    raw["counts"]["lag_weeks"] = [1]  # type: ignore[index]
    with pytest.raises(ConfigError) as err:
        load_cell_spec(_write(tmp_path, raw))
    assert "counts.lag_weeks" in str(err.value) and "cell_features.yaml" in str(err.value)

    raw = _shipped()
    raw["colour"] = "red"
    with pytest.raises(ConfigError, match="colour"):
        load_cell_spec(_write(tmp_path, raw))


def test_unknown_categories_and_bad_dates_are_refused(tmp_path: Path) -> None:
    raw = _shipped()
    raw["district"]["appeal_groups"]["violence"] = ["violence", "fighting"]  # type: ignore[index]
    with pytest.raises(ConfigError, match="fighting"):
        load_cell_spec(_write(tmp_path, raw))
    raw = _shipped()
    raw["seasonality"]["holidays"] = ["02-30"]  # type: ignore[index]
    with pytest.raises(ConfigError, match="02-30"):
        load_cell_spec(_write(tmp_path, raw))


def test_the_digest_follows_the_meaning_not_the_bytes(tmp_path: Path) -> None:
    raw = _shipped()
    base = load_cell_spec(_write(tmp_path, raw)).digest()
    path = tmp_path / "same.yaml"
    path.write_text("# a comment\n" + yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    assert load_cell_spec(path).digest() == base
    assert len(base) == 64
    raw["near_repeat"]["half_lives_weeks"] = [1, 3]  # type: ignore[index]
    assert load_cell_spec(_write(tmp_path, raw)).digest() != base


def test_holidays_count_month_days_every_year_and_dates_once() -> None:
    from datetime import date

    spec = CellSpec.model_validate({"seasonality": {"holidays": ["01-01", "2025-01-02"]}})
    s = spec.seasonality
    assert s.holidays_between(date(2024, 12, 30), date(2025, 1, 5)) == 2
    assert s.holidays_between(date(2025, 12, 29), date(2026, 1, 4)) == 1
    assert s.holidays_between(date(2025, 1, 6), date(2025, 1, 12)) == 0
