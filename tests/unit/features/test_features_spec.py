"""The feature spec: protected attributes never reach models; config errors name the field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from features.contract import PROTECTED_ATTRIBUTES
from features.frames.definitions import (
    Domain,
    FeatureSpec,
    default_config_path,
    load_spec,
    model_inputs,
    parse_spec,
)
from riskcast.configio import CONFIG_DIR_ENV
from riskcast.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "configs" / "features.yaml"


@pytest.fixture(scope="module")
def spec() -> FeatureSpec:
    return load_spec(CONFIG)


@pytest.fixture
def raw() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    return copy.deepcopy(loaded)


# ---- protected attributes --------------------------------------------------------------------
AUDIT_ONLY = {"sex", "region", "district", "settlement", *PROTECTED_ATTRIBUTES}


def test_protected_attributes_are_never_model_inputs(spec: FeatureSpec) -> None:
    inputs = model_inputs(spec)
    for name in inputs:
        feature = spec.feature(name)
        assert not feature.protected, name
        assert name not in AUDIT_ONLY, name
        if not feature.is_derived:
            assert not feature.referenced_columns() & AUDIT_ONLY, name
    assert "ethnicity" in spec.protected_features()  # present for audits
    assert set(spec.protected_features()) >= AUDIT_ONLY


def test_reading_a_protected_column_requires_protected_true(raw: dict[str, Any]) -> None:
    ethnicity = next(f for f in raw["features"] if f["name"] == "ethnicity")
    ethnicity["protected"] = False
    with pytest.raises(ConfigError, match=r"\(ethnicity\)\.protected: reads protected attribute"):
        parse_spec(raw)


def test_filtering_on_a_protected_column_requires_protected_true(raw: dict[str, Any]) -> None:
    raw["features"].append(
        {
            "name": "cases_by_group",
            "source": "criminal_cases",
            "filters": [{"column": "person_id", "in": ["x"]}],
            "aggregation": "count",
            "domain": "criminal_history",
            "kind": "static",
            "direction": 0,
            "description": "fine: person_id is not protected",
        }
    )
    parse_spec(raw)


def test_derived_from_protected_must_be_protected(raw: dict[str, Any]) -> None:
    raw["features"].append(
        {
            "name": "leak",
            "source": "derived",
            "op": "sub",
            "inputs": ["age_at", "education_level"],
            "domain": "demographics_age",
            "kind": "static",
            "direction": 0,
            "description": "allowed: neither input is protected",
        }
    )
    parse_spec(raw)
    raw["features"][-1]["inputs"] = ["age_at", "sex"]
    with pytest.raises(ConfigError, match=r"\(leak\)\.protected: derived from protected"):
        parse_spec(raw)


# ---- the shipped spec ------------------------------------------------------------------------
def test_spec_is_large_and_covers_every_domain(spec: FeatureSpec) -> None:
    assert len(spec.model_inputs()) >= 40
    assert {f.domain for f in spec.features} == set(Domain)
    assert {f.source for f in spec.features} >= {
        "persons",
        "criminal_cases",
        "admin_offences",
        "obligations",
        "social_status",
        "releases",
    }


def test_spec_hash_is_stable_and_sensitive(raw: dict[str, Any], spec: FeatureSpec) -> None:
    assert parse_spec(copy.deepcopy(raw)).spec_hash() == spec.spec_hash()
    raw["features"][0]["window_days"] = 30
    assert parse_spec(raw).spec_hash() != spec.spec_hash()


# ---- errors name the file, the feature and the field -----------------------------------------
def _first(raw: dict[str, Any], **changes: Any) -> dict[str, Any]:
    raw["features"][0].update(changes)
    return raw


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"aggregation": "median"}, r"features\[0\] \(cases_total\)\.aggregation: Input should be"),
        ({"window_days": -5}, r"features\[0\] \(cases_total\)\.window_days: Input should be"),
        ({"domain": "mood"}, r"features\[0\] \(cases_total\)\.domain"),
        ({"colour": "red"}, r"features\[0\] \(cases_total\)\.colour: Extra inputs"),
        ({"source": "tweets"}, r"source 'tweets' is not a contract table"),
        ({"aggregation": "sum"}, r"aggregation sum needs `column`"),
        (
            {"filters": [{"column": "category", "in": ["violnt"]}]},
            r"\(cases_total\).*filters\[0\]: \['violnt'\] not among category values",
        ),
        (
            {"filters": [{"column": "colour", "equals": "x"}]},
            r"filters\[0\]: criminal_cases has no column 'colour'",
        ),
        (
            {"filters": [{"column": "category", "in": ["violent"], "equals": "x"}]},
            r"\(cases_total\)\.filters\[0\]: give exactly one of in, not_in, equals",
        ),
        (
            {"filters": [{"column": "outcome_at", "compare": ">"}]},
            r"`to` is required with `compare`",
        ),
        ({"name": "Cases Total"}, r"features\[0\] \(Cases Total\)\.name"),
        (
            {"filters": [{"column": "street", "equals": "yes"}]},
            r"filters\[0\]: \['yes'\] are not bool values",
        ),
        ({"aggregation": "mean", "column": "article"}, r"needs a numeric column or value_map"),
        ({"window_days": 365, "window_offset_days": -1}, r"window_offset_days"),
        ({"aggregation": "state_at"}, r"needs end_column"),
        ({"aggregation": "value", "column": "category"}, r"read the entity's own table"),
    ],
)
def test_config_errors_name_the_field(
    raw: dict[str, Any], change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_spec(_first(raw, **change), source="features.yaml")


def test_duplicate_names_are_refused(raw: dict[str, Any]) -> None:
    raw["features"].append(dict(raw["features"][0]))
    with pytest.raises(ConfigError, match=r"\(cases_total\): duplicate feature name"):
        parse_spec(raw)


def test_load_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "features.yaml"
    path.write_text("features: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=str(path)):
        load_spec(path)
    path.write_text("version: 1\nfeatures: []\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{path}: features: List should have at least 1"):
        load_spec(path)


def test_default_config_path_from_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(CONFIG_DIR_ENV, raising=False)
    assert default_config_path() == CONFIG  # repository root, next to the package
    (tmp_path / "configs").mkdir()
    local = tmp_path / "configs" / "features.yaml"
    local.write_text(CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    assert default_config_path() == local
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "features.yaml").write_text("x", encoding="utf-8")
    monkeypatch.setenv(CONFIG_DIR_ENV, str(elsewhere))
    assert default_config_path() == elsewhere / "features.yaml"
