"""The hotspot store (SQLite and PostgreSQL), its atomic replacement, the forecast's checks,
the cells' GeoJSON polygons and the map's projection and colour scale."""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any, cast

import h3
import polars as pl
import pytest
import sqlalchemy as sa

from riskcast.errors import InputError
from serving.db import open_engine
from serving.places.geometry import cell_polygon, cell_ring, colour_classes, project, svg_map
from serving.places.store import HotspotStore, forecasts, materializations
from tests.conftest import POSTGRES
from tests.unit.serving.test_hotspots_data import synthetic_forecast


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = open_engine(f"sqlite:///{tmp_path / 'riskcast.sqlite'}")
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(pg_schema: str) -> Iterator[sa.Engine]:
    """The service's engine on a schema of its own (first on the search path), dropped after."""
    url = sa.make_url(POSTGRES).update_query_dict({"options": f"-csearch_path={pg_schema}"})
    engine = open_engine(url.render_as_string(hide_password=False))
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> sa.Engine:
    name = {"sqlite": "sqlite_engine", "postgresql": "pg_engine"}[request.param]
    found: sa.Engine = request.getfixturevalue(name)
    return found


def test_materialize_stores_every_row_and_ranks_a_unit(engine: sa.Engine) -> None:
    frame = synthetic_forecast(3)
    store = HotspotStore(engine).create()
    assert store.current() is None
    done = store.materialize(frame)
    assert done.rows == frame.height and done.model_version == "3"
    assert done.model_name == "street-crime" and done.as_of == date(2025, 6, 30)
    assert done.weeks[0] == date(2025, 7, 7) and len(done.weeks) == 8
    assert set(done.units) == {"AST", "SHY"}
    assert set(done.units["AST"]) == set(frame.filter(pl.col("region") == "AST")["district"])
    week = done.weeks[2]
    top = store.unit_week(done, "AST", None, week, limit=5)
    expected = (
        frame.filter((pl.col("region") == "AST") & (pl.col("week_start") == week))
        .sort(["expected_count", "cell_id"], descending=[True, False])
        .head(5)
    )
    assert top["cell_id"].to_list() == expected["cell_id"].to_list()
    assert top["rank"].to_list() == [1, 2, 3, 4, 5]
    assert top["expected_count"].to_list() == pytest.approx(expected["expected_count"].to_list())
    assert top["reasons"].to_list() == expected["reasons"].to_list()
    assert top["materialized_at"][0] == done.materialized_at
    district = done.units["AST"][0]
    only = store.unit_week(done, "AST", district, week)
    assert set(only["district"]) == {district} and only.height > 0
    count, total = store.unit_totals(done, "AST", None, week)
    unit = frame.filter((pl.col("region") == "AST") & (pl.col("week_start") == week))
    assert count == unit.height and total == pytest.approx(unit["expected_count"].sum())


def test_a_new_materialization_replaces_the_old_and_keeps_one_before(engine: sa.Engine) -> None:
    store = HotspotStore(engine).create()
    first = store.materialize(synthetic_forecast(1, model_version="1"))
    second = store.materialize(synthetic_forecast(2, model_version="2", regions=("SHY",)))
    assert store.current() == second and set(second.units) == {"SHY"}
    # a reader that looked up the first just before the second committed still gets its rows
    assert store.unit_week(first, "AST", None, first.weeks[0]).height > 0
    third = store.materialize(synthetic_forecast(3, model_version="3"))
    with engine.connect() as conn:
        kept = sorted(r[0] for r in conn.execute(sa.select(materializations.c.id)))
        held = sorted(r[0] for r in conn.execute(sa.select(forecasts.c.materialization).distinct()))
    assert kept == held == [second.id, third.id]
    assert store.current() == third


def test_a_failed_materialization_leaves_the_current_one_serving(engine: sa.Engine) -> None:
    """The rows are written in one transaction with their header: a failure half-way (here a
    duplicate key the database refuses in a later chunk) leaves nothing of the new one."""
    store = HotspotStore(engine).create()
    good = store.materialize(synthetic_forecast(4))
    broken = synthetic_forecast(5, model_version="9")
    with pytest.MonkeyPatch.context() as mp:
        import serving.places.store as module

        mp.setattr(module, "CHUNK", 100)
        mp.setattr(module, "check_forecast", lambda f: pl.concat([f, f.head(1)]))
        with pytest.raises(sa.exc.IntegrityError):
            store.materialize(broken)
    assert store.current() == good
    with engine.connect() as conn:
        versions = {r[0] for r in conn.execute(sa.select(forecasts.c.model_version).distinct())}
        headers = conn.execute(sa.select(sa.func.count()).select_from(materializations)).scalar()
    assert versions == {"3"} and headers == 1


def test_readers_see_the_old_materialization_until_the_new_one_commits(
    sqlite_engine: sa.Engine,
) -> None:
    """While the new rows are being written (held open here between two chunks), another
    connection still reads the old materialisation, whole."""
    store = HotspotStore(sqlite_engine).create()
    old = store.materialize(synthetic_forecast(6, model_version="1"))
    writing, release = threading.Event(), threading.Event()
    seen: list[object] = []
    original = sa.Connection.execute

    def slow_execute(self: sa.Connection, statement: Any, *args: Any, **kw: Any) -> Any:
        result = original(self, statement, *args, **kw)
        if isinstance(statement, sa.Insert) and statement.table is forecasts:
            writing.set()
            release.wait(10)
        return result

    def reader() -> None:
        writing.wait(10)
        seen.append(store.current())
        seen.append(store.unit_week(old, "AST", None, old.weeks[0]).height)
        release.set()

    thread = threading.Thread(target=reader)
    thread.start()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sa.Connection, "execute", slow_execute)
        new = store.materialize(synthetic_forecast(7, model_version="2"))
    thread.join(10)
    assert seen[0] == old and isinstance(seen[1], int) and seen[1] > 0
    assert store.current() == new and new.model_version == "2"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop("upper_80"), "missing columns ['upper_80']"),
        (lambda f: f.head(0), "no rows"),
        (lambda f: f.with_columns(pl.lit(None, pl.Float64).alias("lat")), "'lat' is null"),
        (
            lambda f: f.with_columns(pl.lit(-1.0).alias("expected_count")),
            "'expected_count' is not a finite number >= 0 in row 0",
        ),
        (lambda f: f.with_columns(pl.lit(99.0).alias("lower_80")), "lower_80 > upper_80"),
        (lambda f: pl.concat([f, f.head(1)]), "(cell_id, week_start) repeats"),
        (
            lambda f: f.with_columns(pl.col("week_start") + timedelta(days=1)),
            "week_start is not a Monday",
        ),
        (
            lambda f: f.with_columns(
                pl.when(pl.int_range(pl.len()) == 3)
                .then(pl.lit("4"))
                .otherwise(pl.col("model_version"))
                .alias("model_version")
            ),
            "one model version per materialization",
        ),
        (
            lambda f: f.with_columns(
                pl.when(pl.int_range(pl.len()) == 0)
                .then(pl.lit("not-a-cell"))
                .otherwise(pl.col("cell_id"))
                .alias("cell_id")
            ),
            "cell_id 'not-a-cell' is not an H3 cell",
        ),
        (lambda f: f.with_columns(pl.lit("{").alias("reasons")), "reasons in row 0"),
    ],
)
def test_a_broken_forecast_is_refused_naming_the_column(
    sqlite_engine: sa.Engine, change: object, message: str
) -> None:
    store = HotspotStore(sqlite_engine).create()
    with pytest.raises(InputError) as caught:
        store.materialize(change(synthetic_forecast(8, regions=("AST",))))  # type: ignore[operator]
    assert message in str(caught.value)
    assert store.current() is None


# ---- geometry ---------------------------------------------------------------------------------
@pytest.mark.parametrize("resolution", [8, 9])
def test_cell_polygons_are_closed_counter_clockwise_lon_lat_rings(resolution: int) -> None:
    lat, lon = 51.128, 71.430  # Astana: longitude and latitude far apart, order shows
    cell = h3.latlng_to_cell(lat, lon, resolution)
    polygon = cell_polygon(cell)
    assert polygon["type"] == "Polygon"
    coordinates = cast(list[list[list[float]]], polygon["coordinates"])
    assert len(coordinates) == 1  # one exterior ring, no holes
    ring = coordinates[0]
    assert len(ring) == 7 and ring[0] == ring[-1]
    assert all(70.0 < x < 73.0 and 50.0 < y < 52.0 for x, y in ring)  # [lon, lat]
    area = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in itertools.pairwise(ring))
    assert area > 0  # counter-clockwise (RFC 7946)
    boundary = h3.cell_to_boundary(cell)  # (lat, lng) pairs
    for x, y in ring:  # every position is a vertex of H3's boundary, swapped to [lon, lat]
        assert any(abs(y - a) < 1e-6 and abs(x - b) < 1e-6 for a, b in boundary), (x, y)
    centre_x = sum(p[0] for p in ring[:-1]) / 6
    centre_y = sum(p[1] for p in ring[:-1]) / 6
    assert h3.latlng_to_cell(centre_y, centre_x, resolution) == cell


def test_projection_keeps_hexagons_regular_at_high_latitude() -> None:
    """Scaled by cos(latitude), a hexagon at 51° N is as wide as it is tall (about 2/√3), not
    stretched sideways by 1/cos(51°) = 1.59."""
    ring = cell_ring(h3.latlng_to_cell(51.128, 71.430, 8))
    (projected,), height = project([ring], width=400)
    xs, ys = [p[0] for p in projected], [p[1] for p in projected]
    ratio = (max(xs) - min(xs)) / (max(ys) - min(ys))
    assert 0.8 < ratio < 1.25, ratio
    assert height > 0 and min(xs) >= 0 and max(xs) <= 400
    north = max(ring, key=lambda p: p[1])
    assert projected[ring.index(north)][1] == min(ys)  # north up


def test_colour_classes_are_sequential_and_cover_every_value() -> None:
    values = [0.01 * i for i in range(200)] + [5.0]
    classes = colour_classes(values)
    assert len(classes) == 8 and classes[0].low == 0.0 and classes[-1].high == 5.0
    assert all(a.high == b.low for a, b in itertools.pairwise(classes))
    assert len({c.colour for c in classes}) == 8
    flat = colour_classes([0.3] * 50)
    assert len(flat) == 1 and flat[0].low == flat[0].high == 0.3
    assert colour_classes([]) == []


def test_svg_map_draws_every_cell_and_labels_the_top_ones() -> None:
    frame = synthetic_forecast(9, regions=("AST",), weeks=1).sort("expected_count", descending=True)
    cells = [
        (c, v, f"cell {c}", i + 1)
        for i, (c, v) in enumerate(frame.select("cell_id", "expected_count").iter_rows())
    ]
    drawn = svg_map(cells, width=600, labelled=5)
    assert len(drawn.cells) == len(cells) and drawn.width == 600 and drawn.height > 100
    assert sorted(c.rank for c in drawn.cells if c.rank) == [1, 2, 3, 4, 5]
    assert drawn.cells[-1].rank == 1  # drawn last, on top
    for c in drawn.cells:
        points = [tuple(map(float, p.split(","))) for p in c.points.split()]
        assert len(points) == 6
        assert all(0 <= x <= 600 and 0 <= y <= drawn.height for x, y in points)
    top = next(c for c in drawn.cells if c.rank == 1)
    assert top.colour == drawn.legend[-1].colour  # the highest in the darkest class
    assert math.isfinite(top.label_x) and math.isfinite(top.label_y)
