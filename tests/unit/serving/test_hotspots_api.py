"""`GET /v1/hotspots` over ASGI: the formats, the ranking, scope and purpose, the access log,
and a 4xx naming the field for every bad query (issue 12 §4 and §6)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import parse_qsl

import polars as pl
import pytest

from serving.app import create_app
from serving.db import open_engine, set_stop
from serving.places.store import HotspotStore
from tests.service_helpers import (
    AsgiClient,
    RecordingLog,
    Reply,
    ServiceEnv,
    copy_home,
    serve,
    settings_for,
)
from tests.unit.serving.test_hotspots_data import synthetic_forecast

PURPOSE = "case_review"
AS_OF = date(2025, 6, 30)
FIRST_WEEK = date(2025, 7, 7)  # the Monday after AS_OF: horizon 1


def _home(service_env: ServiceEnv, target: Path, forecast: pl.DataFrame | None) -> Path:
    copy_home(service_env.home, target)
    if forecast is not None:
        engine = open_engine(settings_for(target).effective_database_url)
        try:
            HotspotStore(engine).materialize(forecast)
        finally:
            engine.dispose()
    return target


@pytest.fixture(scope="module")
def forecast() -> pl.DataFrame:
    return synthetic_forecast(regions=("AST", "SHY"), as_of=AS_OF, weeks=8)


@pytest.fixture(scope="module")
def client(
    service_env: ServiceEnv, forecast: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[AsgiClient, RecordingLog, Path]]:
    from serving.api.deps import get_access_log

    home = _home(service_env, tmp_path_factory.mktemp("hotspots") / "home", forecast)
    app = create_app(settings_for(home))
    log = RecordingLog()
    app.dependency_overrides[get_access_log] = lambda: log
    with serve(app) as c:
        yield c, log, home


def hot(c: AsgiClient, query: str, token: str | None = None) -> Reply:
    """``GET /v1/hotspots?query`` (the query string as a user would type it)."""
    return c.get("/v1/hotspots", token=token, params=dict(parse_qsl(query)))


def test_json_ranks_the_units_cells_with_intervals_reasons_and_polygons(
    client: tuple[AsgiClient, RecordingLog, Path], service_env: ServiceEnv, forecast: pl.DataFrame
) -> None:
    c, log, _ = client
    before = len(log.entries)
    r = hot(c, f"region=AST&purpose={PURPOSE}&top=7", token=service_env.tokens["olga"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["week"] == FIRST_WEEK.isoformat() and body["horizon"] == 1
    assert body["model_name"] == "street-crime" and body["purpose"] == PURPOSE
    cells = body["cells"]
    assert len(cells) == 7 and [x["rank"] for x in cells] == list(range(1, 8))
    # the ranking is the forecast's: the 7 largest expected counts of AST's first week
    week1 = forecast.filter((pl.col("region") == "AST") & (pl.col("horizon") == 1))
    best = week1.sort("expected_count", descending=True).head(7)
    assert [x["cell_id"] for x in cells] == best["cell_id"].to_list()
    assert body["cells_in_unit"] == week1.height
    assert body["expected_in_unit"] == pytest.approx(week1["expected_count"].sum())
    for x in cells:
        assert x["region"] == "AST"
        assert x["lower_80"] <= x["expected_count"] <= x["upper_80"]
        ring = x["polygon"]["coordinates"][0]
        assert x["polygon"]["type"] == "Polygon" and ring[0] == ring[-1] and len(ring) == 7
        lons, lats = [p[0] for p in ring], [p[1] for p in ring]
        assert min(lons) <= x["lon"] <= max(lons) and min(lats) <= x["lat"] <= max(lats)
        assert len(x["reasons"]) == 3 and all(s["sentence"] for s in x["reasons"])
    (entry,) = log.entries[before:]
    assert entry["action"] == "hotspots" and entry["purpose"] == PURPOSE
    assert entry["actor"] == "olga" and entry["status"] == 200 and entry["persons"] == []
    assert entry["model_version"] == forecast["model_version"][0]
    assert entry["params"]["cells"] == [x["cell_id"] for x in cells]


def test_a_district_and_a_later_week(
    client: tuple[AsgiClient, RecordingLog, Path], service_env: ServiceEnv, forecast: pl.DataFrame
) -> None:
    c, _, _ = client
    week = FIRST_WEEK + timedelta(weeks=3)
    district = forecast.filter(pl.col("region") == "AST")["district"].unique().sort()[0]
    r = hot(
        c,
        f"region=AST&district={district}&week={week}&purpose={PURPOSE}&top=1000",
        token=service_env.tokens["olga"],
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["horizon"] == 4 and body["week"] == week.isoformat()
    expected = forecast.filter(
        (pl.col("district") == district) & (pl.col("week_start") == week)
    ).height
    assert len(body["cells"]) == body["cells_in_unit"] == expected > 0
    assert {x["district"] for x in body["cells"]} == {district}
    counts = [x["expected_count"] for x in body["cells"]]
    assert counts == sorted(counts, reverse=True)


def test_csv_and_geojson_export_the_same_cells(
    client: tuple[AsgiClient, RecordingLog, Path], service_env: ServiceEnv
) -> None:
    c, log, _ = client
    token = service_env.tokens["olga"]
    base = f"region=AST&purpose={PURPOSE}&top=5"
    as_json = hot(c, base, token=token).json()
    before = len(log.entries)
    as_csv = hot(c, base + "&format=csv", token=token)
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    lines = [line for line in as_csv.text.splitlines() if not line.startswith("#")]
    rows = list(csv.DictReader(io.StringIO("\n".join(lines))))
    assert [r["cell_id"] for r in rows] == [x["cell_id"] for x in as_json["cells"]]
    assert float(rows[0]["expected_count"]) == pytest.approx(
        as_json["cells"][0]["expected_count"], abs=1e-4
    )
    geo = hot(c, base + "&format=geojson", token=token)
    assert geo.status_code == 200, geo.text
    assert geo.headers["content-type"].startswith("application/geo+json")
    collection = geo.json()
    assert collection["type"] == "FeatureCollection"
    assert [f["id"] for f in collection["features"]] == [x["cell_id"] for x in as_json["cells"]]
    first = collection["features"][0]
    assert first["geometry"]["type"] == "Polygon"
    assert first["properties"]["expected_count"] == pytest.approx(
        as_json["cells"][0]["expected_count"]
    )
    assert [e["params"]["format"] for e in log.entries[before:]] == ["csv", "geojson"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (f"region=AST&purpose={PURPOSE}&week={FIRST_WEEK + timedelta(weeks=8)}", "week"),
        (f"region=AST&purpose={PURPOSE}&week={FIRST_WEEK - timedelta(weeks=1)}", "week"),
        (f"region=AST&purpose={PURPOSE}&week={FIRST_WEEK + timedelta(days=2)}", "week"),
        (f"region=AST&purpose={PURPOSE}&week=2025-13-01", "week"),
        (f"region=AST&purpose={PURPOSE}&district=AST-nowhere", "district"),
        ("region=AST", "purpose"),
        ("region=AST&purpose=curiosity", "purpose"),
        (f"region=AST&purpose={PURPOSE}&top=0", "top"),
        (f"region=AST&purpose={PURPOSE}&top=100000", "top"),
        (f"region=AST&purpose={PURPOSE}&format=kml", "format"),
        (f"region=AST&purpose={PURPOSE}&colour=red", "colour"),
    ],
)
def test_a_bad_query_is_422_naming_the_field(
    client: tuple[AsgiClient, RecordingLog, Path],
    service_env: ServiceEnv,
    query: str,
    field: str,
) -> None:
    c, _, _ = client
    r = hot(c, f"{query}", token=service_env.tokens["olga"])
    assert r.status_code == 422, r.text
    assert field in r.text


def test_another_region_is_403_and_logged_roles_are_checked(
    client: tuple[AsgiClient, RecordingLog, Path], service_env: ServiceEnv
) -> None:
    c, log, _ = client
    before = len(log.entries)
    r = hot(c, f"region=SHY&purpose={PURPOSE}", token=service_env.tokens["olga"])
    assert r.status_code == 403 and "SHY" in r.text
    (entry,) = log.entries[before:]
    assert entry["status"] == 403 and entry["actor"] == "olga"
    assert entry["params"]["region"] == "SHY"
    # the SHY officer reads SHY; an auditor is not an officer; no token is 401
    shy = hot(c, f"region=SHY&purpose={PURPOSE}", token=service_env.tokens["oleg"])
    assert shy.status_code == 200 and {x["region"] for x in shy.json()["cells"]} == {"SHY"}
    ada = hot(c, f"region=AST&purpose={PURPOSE}", token=service_env.tokens["ada"])
    assert ada.status_code == 403
    assert hot(c, f"region=AST&purpose={PURPOSE}").status_code == 401


def test_a_region_without_cells_and_an_empty_store_say_what_is_missing(
    service_env: ServiceEnv, tmp_path: Path
) -> None:
    """Only SHY forecast: the AST officer's region has no cells (422 naming region); nothing
    materialised at all is a 503 that says how to materialise, never an empty map."""
    only_shy = synthetic_forecast(regions=("SHY",), as_of=AS_OF)
    for folder, frame in (("shy", only_shy), ("empty", None)):
        home = _home(service_env, tmp_path / folder, frame)
        with serve(create_app(settings_for(home))) as c:
            r = hot(c, f"region=AST&purpose={PURPOSE}", token=service_env.tokens["olga"])
        if frame is None:
            assert r.status_code == 503 and "places materialize" in r.text, r.text
        else:
            assert r.status_code == 422 and "region" in r.text and "SHY" in r.text, r.text


def test_the_stop_switch_stops_place_forecasts_too(
    service_env: ServiceEnv, forecast: pl.DataFrame, tmp_path: Path
) -> None:
    home = _home(service_env, tmp_path / "stopped", forecast)
    engine = open_engine(settings_for(home).effective_database_url)
    try:
        set_stop(engine, stopped=True, by="root", reason="withdrawn for review")
    finally:
        engine.dispose()
    with serve(create_app(settings_for(home))) as c:
        r = hot(c, f"region=AST&purpose={PURPOSE}", token=service_env.tokens["olga"])
    assert r.status_code == 503 and "withdrawn for review" in r.text, r.text
