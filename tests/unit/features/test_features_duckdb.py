"""Second opinion: the spec compiled to DuckDB SQL agrees with the Polars builder, and both
builder paths (lazy plan, two-stage collect) agree with each other."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from experiments.duckdb_features import feature_sql
from features.frames.builder import build_features, collect_features
from features.frames.definitions import FeatureSpec, load_spec
from features.store.offline import OfflineStore
from riskcast.errors import InputError
from tests.unit.features.test_features_golden import REPO, make_golden_store
from tests.unit.features.test_features_point_in_time import make_correction_stores

SPEC: FeatureSpec = load_spec(REPO / "configs" / "features.yaml")
DATES = [date(2025, 1, 31), date(2025, 2, 28), date(2025, 6, 29), date(2025, 6, 30)]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> OfflineStore:
    return make_golden_store(tmp_path_factory.mktemp("golden"))


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[OfflineStore, OfflineStore]:
    return make_correction_stores(tmp_path_factory.mktemp("corrections"))


def _duckdb(store: OfflineStore, as_of: date) -> pl.DataFrame:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    frame = pl.DataFrame(con.sql(feature_sql(SPEC, store, as_of)).to_arrow_table())
    con.close()
    return frame


def _agree(store: OfflineStore) -> None:
    """Both engines agree, also on dates between deliveries (what the store knew then)."""
    late = {"allow_after_extraction": True}
    lazy = build_features(store, SPEC, DATES, **late).collect().sort("as_of", "person_id")
    eager = collect_features(store, SPEC, DATES, **late).sort("as_of", "person_id")
    assert_frame_equal(lazy, eager)
    for as_of in DATES:
        ours = eager.filter(pl.col("as_of") == as_of)
        theirs = _duckdb(store, as_of).sort("person_id")
        assert_frame_equal(ours, theirs, check_dtypes=False, abs_tol=1e-9)


def test_golden_store(store: OfflineStore) -> None:
    _agree(store)


def test_store_with_corrections(stores: tuple[OfflineStore, OfflineStore]) -> None:
    for each in stores:
        _agree(each)


@pytest.mark.parametrize("population", ["with_record", "released"])
def test_populations_agree_across_paths(store: OfflineStore, population: str) -> None:
    lazy = build_features(store, SPEC, DATES, population).collect().sort("as_of", "person_id")
    eager = collect_features(store, SPEC, DATES, population).sort("as_of", "person_id")
    assert_frame_equal(lazy, eager)
    assert lazy.height > 0


def test_dates_after_the_last_extraction_are_refused(store: OfflineStore) -> None:
    last = store.state().last_delivery
    assert last is not None
    with pytest.raises(InputError, match="after the last delivery"):
        build_features(store, SPEC, [last.extracted_at.date() + timedelta(days=1)])
    assert build_features(store, SPEC, [last.extracted_at.date()]).collect().height > 0
