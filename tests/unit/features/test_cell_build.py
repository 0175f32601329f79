"""The point-in-time cell frame (`features.cells.build`): documented keys, hand-computed lags,
windows, near-repeat and ring counts, district appeals/admin/releases, the label, and the
two-clock proof: a frame built as of T from a store holding later rows and corrections equals
the frame built from the data cut at T (the shortcut over weekly arrays equals the slow path)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import h3
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.cells.build import KEYS, anchor_week, build_cell_frame
from features.cells.cells import cell_universe
from features.cells.config import PlacesConfig
from features.cells.sources import CellSources, load_sources
from features.cells.spec import CellSpec, load_cell_spec
from features.cells.universe import ring_pairs, universe_at
from features.contract import TABLES
from features.store.offline import VALID_FROM, VALID_TO, OfflineStore, visible_as_of

UTC_TS = pl.Datetime("us", "UTC")
T = date(2025, 6, 29)  # a Sunday
CENTRE = h3.latlng_to_cell(51.15, 71.45, 8)
NEAR = sorted(h3.grid_ring(CENTRE, 1))[0]
FAR = next(c for c in sorted(h3.grid_ring(CENTRE, 2)) if h3.grid_distance(NEAR, c) == 2)
PLACES = PlacesConfig(h3_resolution=8, k_ring=1)
INC: dict[str, pl.DataType] = {
    "incident_id": pl.String(),
    "registered_at": UTC_TS,
    "region": pl.String(),
    "district": pl.String(),
    "lat": pl.Float64(),
    "lon": pl.Float64(),
    "crime_type": pl.String(),
    VALID_FROM: UTC_TS,
    VALID_TO: UTC_TS,
}
APP: dict[str, pl.DataType] = {
    "appeal_id": pl.String(),
    "submitted_at": UTC_TS,
    "district": pl.String(),
    "category": pl.String(),
    VALID_FROM: UTC_TS,
    VALID_TO: UTC_TS,
}
ADM: dict[str, pl.DataType] = {
    "record_id": pl.String(),
    "person_id": pl.String(),
    "registered_at": UTC_TS,
    "category": pl.String(),
    VALID_FROM: UTC_TS,
    VALID_TO: UTC_TS,
}
REL: dict[str, pl.DataType] = {
    "person_id": pl.String(),
    "released_at": pl.Date(),
    "sentence": pl.String(),
    "recorded_at": UTC_TS,
    VALID_FROM: UTC_TS,
    VALID_TO: UTC_TS,
}
PER: dict[str, pl.DataType] = {
    "person_id": pl.String(),
    "district": pl.String(),
    VALID_FROM: UTC_TS,
    VALID_TO: UTC_TS,
}


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def incident(iid: str, cell: str, registered: datetime, crime: str = "theft") -> dict[str, object]:
    lat, lon = h3.cell_to_latlng(cell)
    return {
        "incident_id": iid,
        "registered_at": registered,
        "region": "AST",
        "district": "AST-U1",
        "lat": lat,
        "lon": lon,
        "crime_type": crime,
        VALID_FROM: None,
        VALID_TO: None,
    }


def spec() -> CellSpec:
    return load_cell_spec(Path("configs/cell_features.yaml"))


def hand_sources() -> CellSources:
    week = anchor_week(T)  # Monday 2025-06-23
    rows = [
        incident("c1", CENTRE, at(week + timedelta(days=1)), "theft"),
        incident("c2", CENTRE, at(T, 23), "assault"),  # late on T: still known by the end of T
        incident("c3", CENTRE, at(week - timedelta(weeks=2)), "theft"),  # lag 3
        incident("c4", CENTRE, at(week - timedelta(weeks=9)), "theft"),  # lag 10
        incident("c5", CENTRE, at(T + timedelta(days=1), 1)),  # after T: only the label sees it
        incident("n1", NEAR, at(week + timedelta(days=2))),  # lag 1
        incident("n2", NEAR, at(week - timedelta(days=3))),  # lag 2
        incident("f1", FAR, at(week - timedelta(weeks=3))),  # lag 4
    ]
    appeals = pl.DataFrame(
        [
            ("a1", at(week), "AST-U1", "violence", None, None),
            ("a2", at(T, 22), "AST-U1", "bullying", None, None),
            ("a3", at(week - timedelta(days=2)), "AST-U1", "noise", None, None),
            ("a4", at(T + timedelta(days=1)), "AST-U1", "violence", None, None),
            ("a5", at(week), "AST-U2", "violence", None, None),
        ],
        schema=APP,
        orient="row",
    )
    admin = pl.DataFrame(
        [
            ("m1", "p1", at(week - timedelta(days=5)), "public_order", None, None),
            ("m2", "p1", at(T + timedelta(days=2)), "alcohol", None, None),
            ("m3", "p3", at(week), "alcohol", None, None),  # p3 lives elsewhere
        ],
        schema=ADM,
        orient="row",
    )
    releases = pl.DataFrame(
        [
            ("p1", date(2025, 5, 1), "imprisonment", at(date(2025, 5, 2)), None, None),
            ("p2", date(2025, 6, 1), "parole", at(T + timedelta(days=6)), None, None),
            ("p2", date(2024, 6, 1), "imprisonment", at(date(2024, 6, 2)), None, None),
            ("p1", date(2025, 6, 1), "probation", at(date(2025, 6, 2)), None, None),
        ],
        schema=REL,
        orient="row",
    )
    persons = pl.DataFrame(
        [("p1", "AST-U1", None, None), ("p2", "AST-U1", None, None), ("p3", "AST-U2", None, None)],
        schema=PER,
        orient="row",
    )
    return CellSources(
        incidents=pl.DataFrame(rows, schema=INC),
        appeals=appeals,
        admin_offences=admin,
        releases=releases,
        persons=persons,
        last_extracted=at(date(2025, 12, 31), 23),
    )


def test_the_frame_has_the_documented_keys_then_the_spec_then_the_label() -> None:
    s = spec()
    frame = build_cell_frame(hand_sources(), [T], PLACES, s, horizons=[1, 2], with_label=True)
    assert tuple(frame.columns[: len(KEYS)]) == KEYS
    assert frame.columns[-1] == "label"
    assert frame.columns[len(KEYS) : -1] == [f for f in s.model_inputs() if f not in KEYS]
    assert frame.schema["cell_id"] == pl.Utf8 and frame.schema["h3_resolution"] == pl.Int32
    assert frame.schema["ring"] == pl.Int32 and frame.schema["as_of"] == pl.Date
    assert frame.schema["horizon"] == pl.Int32 and frame.schema["week_start"] == pl.Date
    assert frame.schema["label"] == pl.Int64
    # universe: the 3 cells with incidents and their first ring, each with both horizons
    cells = {CENTRE, NEAR, FAR} | set(h3.grid_disk(CENTRE, 1)) | set(h3.grid_disk(NEAR, 1))
    cells |= set(h3.grid_disk(FAR, 1))
    assert set(frame["cell_id"]) == cells
    assert frame.height == 2 * len(cells)
    seen: list[tuple[str, float | None]] = []
    no_label = build_cell_frame(
        hand_sources(),
        [T],
        PLACES,
        s,
        horizons=[1],
        with_label=False,
        progress=lambda stage, fraction: seen.append((stage, fraction)),
    )
    assert "label" not in no_label.columns
    assert seen[-1] == ("cell frame: done", 1.0)
    assert all(f is None or 0.0 <= f <= 1.0 for _, f in seen)


def test_hand_computed_counts_rings_and_near_repeat() -> None:
    frame = build_cell_frame(hand_sources(), [T], PLACES, spec(), horizons=[1, 2], with_label=True)
    got = frame.filter((pl.col("cell_id") == CENTRE) & (pl.col("horizon") == 1)).row(0, named=True)
    assert got["ring"] == 0 and got["district"] == "AST-U1"
    assert got["count_all_lag1"] == 2  # c1, c2 (c5 registered after T)
    assert got["count_all_lag2"] == 0 and got["count_all_lag4"] == 0
    assert got["count_all_4w"] == 3 and got["count_all_13w"] == 4 and got["count_all_52w"] == 4
    assert got["count_theft_4w"] == 2 and got["count_assault_4w"] == 1
    assert got["count_theft_52w"] == 3 and got["count_drugs_52w"] == 0
    assert got["intensity_hl1w"] == pytest.approx(2 + 0.5**2 + 0.5**9)
    assert got["intensity_hl2w"] == pytest.approx(2 + 0.5 ** (2 / 2) + 0.5 ** (9 / 2))
    assert got["ring1_count_lag1"] == 1 and got["ring1_count_4w"] == 2
    assert got["ring2_count_4w"] == 1 and got["ring2_count_52w"] == 1
    assert got["ring1_intensity_hl2w"] == pytest.approx(1 + 0.5**0.5)
    assert got["district_count_4w"] == 3 + 2 + 1
    assert got["district_appeals_violence_lag1"] == 2  # a1 and a2 (a4 after T, a5 elsewhere)
    assert got["district_appeals_public_order_lag2"] == 1
    assert got["district_appeals_violence_lag2"] == 0
    assert got["district_admin_public_order_4w"] == 1 and got["district_admin_alcohol_4w"] == 0
    assert got["district_released_26w"] == 1  # p1; p2's release was recorded after T
    near = frame.filter((pl.col("cell_id") == NEAR) & (pl.col("horizon") == 1)).row(0, named=True)
    assert near["count_all_lag1"] == 1 and near["count_all_lag2"] == 1
    assert near["ring1_count_4w"] == 3  # the centre
    # the label: registrations in the forecast week (c5 on Monday after T), 0 for a quiet week
    label = frame.filter(pl.col("cell_id") == CENTRE).sort("horizon")["label"].to_list()
    assert label == [1, 0]
    assert got["week_sin"] == pytest.approx(math.sin(2 * math.pi * 26 / 52))


def _great_circle_km(a: str, b: str) -> float:
    return float(h3.great_circle_distance(h3.cell_to_latlng(a), h3.cell_to_latlng(b), unit="km"))


def test_kernel_features_spread_known_points_by_a_gaussian_and_ignore_later_ones() -> None:
    """Computed independently: the Gaussian density of each incident known by T at the centre's
    centroid (great-circle distance, cut at 4 bandwidths) times the centre's area."""
    frame = build_cell_frame(hand_sources(), [T], PLACES, spec(), horizons=[1], with_label=False)
    got = frame.filter(pl.col("cell_id") == CENTRE).row(0, named=True)
    area = h3.cell_area(CENTRE, "km^2")
    # known by T within 13 weeks: c1..c4 on the centre's centroid, n1, n2 on NEAR's, f1 on FAR's
    # (c5 was registered after T: a kernel feature must not see it either)
    points = [CENTRE] * 4 + [NEAR] * 2 + [FAR]
    for bandwidth in (0.25, 0.5, 1.0):
        expected = 0.0
        for cell in points:
            d = _great_circle_km(cell, CENTRE)
            if d <= 4 * bandwidth:
                expected += math.exp(-(d**2) / (2 * bandwidth**2)) / (2 * math.pi * bandwidth**2)
        label = {0.25: "0p25", 0.5: "0p5", 1.0: "1"}[bandwidth]
        assert got[f"kernel_{label}km_13w"] == pytest.approx(expected * area, rel=1e-6)
        assert got[f"kernel_{label}km_260w"] == pytest.approx(got[f"kernel_{label}km_13w"])
    # a point 4+ bandwidths away adds nothing: FAR is ~1.6 km from the centre
    assert _great_circle_km(FAR, CENTRE) > 4 * 0.25
    quiet = frame.filter(pl.col("cell_id") == FAR).row(0, named=True)
    assert quiet["kernel_0p25km_13w"] == pytest.approx(
        area_of(FAR) / (2 * math.pi * 0.25**2), rel=1e-6
    )


def area_of(cell: str) -> float:
    return float(h3.cell_area(cell, "km^2"))


def test_missing_optional_tables_give_zero_not_a_crash() -> None:
    full = hand_sources()
    bare = CellSources(incidents=full.incidents, last_extracted=full.last_extracted)
    frame = build_cell_frame(bare, [T], PLACES, spec(), horizons=[1], with_label=False)
    assert frame.height > 0
    for col in ("district_appeals_violence_lag1", "district_admin_alcohol_4w"):
        assert frame[col].sum() == 0
    assert frame["district_released_26w"].sum() == 0


def test_the_label_is_null_until_the_week_has_ended() -> None:
    src = hand_sources()
    src.last_extracted = at(date(2025, 7, 8), 23)  # week 1 (Jun 30 - Jul 6) ended, week 2 not
    frame = build_cell_frame(src, [T], PLACES, spec(), horizons=[1, 2], with_label=True)
    assert frame.filter(pl.col("horizon") == 1)["label"].null_count() == 0
    assert frame.filter(pl.col("horizon") == 2)["label"].null_count() == frame.height // 2


def test_load_sources_reads_none_for_tables_never_delivered(tmp_path: Path) -> None:
    src = load_sources(OfflineStore(tmp_path))
    assert src.incidents.is_empty() and src.appeals is None and src.persons is None
    frame = build_cell_frame(src, [T], PLACES, spec(), horizons=[1], with_label=True)
    assert frame.is_empty()


# ---- two clocks -------------------------------------------------------------------------------
CHANGE = at(date(2025, 8, 20))  # a second delivery's correction time
EARLY_CHANGE = at(date(2025, 3, 5))


def _versioned(rng: random.Random) -> CellSources:
    """Random incidents over two years around a few cells, plus corrections and deletions."""
    cells = [CENTRE, *sorted(h3.grid_ring(CENTRE, 1)), *sorted(h3.grid_ring(CENTRE, 2))[:4]]
    start = datetime(2023, 6, 1, tzinfo=UTC)
    rows = []
    for i in range(900):
        reg = start + timedelta(minutes=rng.randrange(0, 60 * 24 * 800))
        inc = incident(f"i{i}", rng.choice(cells), reg, rng.choice(["theft", "assault", "drugs"]))
        inc["district"] = rng.choice(["AST-U1", "AST-U2"])
        rows.append(inc)
    base = pl.DataFrame(rows, schema=INC)
    early = base.filter(pl.col("registered_at") < at(date(2025, 1, 1))).head(40)
    later = base.filter(pl.col("registered_at") < at(date(2025, 5, 1))).tail(40)
    corrections = []
    for frame, changed in ((early.head(20), EARLY_CHANGE), (later.head(20), CHANGE)):
        moved = frame.with_columns(
            pl.lit("drugs").alias("crime_type"),
            (pl.col("lat") + 0.02).alias("lat"),
            pl.lit(changed, dtype=UTC_TS).alias(VALID_FROM),
        )
        corrections.append(moved)
    closed = {
        **{i: EARLY_CHANGE for i in early["incident_id"]},
        **{i: CHANGE for i in later["incident_id"]},
    }
    base = base.with_columns(
        pl.col("incident_id")
        .replace_strict(closed, default=None, return_dtype=UTC_TS)
        .alias(VALID_TO)
    )
    incidents = pl.concat([base, *corrections])

    def rows_of(
        n: int, schema: dict[str, pl.DataType], make: Callable[[int], tuple[object, ...]]
    ) -> pl.DataFrame:
        return pl.DataFrame([make(i) for i in range(n)], schema=schema, orient="row")

    def when(i: int) -> datetime:
        return start + timedelta(hours=(i * 7919) % (24 * 800))

    appeals = rows_of(
        400,
        APP,
        lambda i: (
            f"a{i}",
            when(i),
            ["AST-U1", "AST-U2"][i % 2],
            ["violence", "noise", "alcohol", "drugs"][i % 4],
            None,
            None,
        ),
    )
    appeals = appeals.with_columns(
        pl.when(pl.col("appeal_id") == "a3").then(pl.lit(CHANGE)).otherwise(None).alias(VALID_TO)
    )
    persons = rows_of(60, PER, lambda i: (f"p{i}", ["AST-U1", "AST-U2"][i % 2], None, None))
    moved = persons.head(10).with_columns(
        pl.lit("AST-U2").alias("district"), pl.lit(CHANGE, dtype=UTC_TS).alias(VALID_FROM)
    )
    persons = pl.concat(
        [
            persons.with_columns(
                pl.when(pl.col("person_id").is_in(moved["person_id"].to_list()))
                .then(pl.lit(CHANGE))
                .otherwise(None)
                .cast(UTC_TS)
                .alias(VALID_TO)
            ),
            moved,
        ]
    )
    admin = rows_of(
        500,
        ADM,
        lambda i: (
            f"m{i}",
            f"p{i % 60}",
            when(i * 3),
            ["public_order", "alcohol", "traffic"][i % 3],
            None,
            None,
        ),
    )
    releases = rows_of(
        80,
        REL,
        lambda i: (
            f"p{i % 60}",
            when(i * 5).date(),
            ["imprisonment", "parole", "probation"][i % 3],
            when(i * 5) + timedelta(days=i % 40),  # recorded up to 40 days late
            None,
            None,
        ),
    )
    return CellSources(incidents, appeals, admin, releases, persons, at(date(2025, 12, 31), 23))


def _cut(src: CellSources, as_of: date) -> CellSources:
    """The data as a store cut at the end of ``as_of`` holds it: the versions visible then, with
    no trace of later deliveries."""

    def cut(frame: pl.DataFrame | None, table: str) -> pl.DataFrame | None:
        if frame is None:
            return None
        return frame.filter(visible_as_of(TABLES[table], as_of)).with_columns(
            pl.lit(None, dtype=UTC_TS).alias(VALID_FROM), pl.lit(None, dtype=UTC_TS).alias(VALID_TO)
        )

    incidents = cut(src.incidents, "incidents")
    assert incidents is not None
    return CellSources(
        incidents,
        cut(src.appeals, "appeals"),
        cut(src.admin_offences, "admin_offences"),
        cut(src.releases, "releases"),
        cut(src.persons, "persons"),
        at(as_of, 23),
    )


def test_two_clocks_a_frame_as_of_t_equals_the_frame_from_the_data_cut_at_t() -> None:
    src = _versioned(random.Random(3))
    # Sundays and a Wednesday; before the early correction, between the two, after the second
    origins = [date(2025, 3, 2), date(2025, 3, 12), date(2025, 6, 29), date(2025, 8, 31)]
    s = spec()
    together = build_cell_frame(src, origins, PLACES, s, horizons=[1, 3], with_label=True)
    assert together.filter(pl.col("as_of") == origins[-1])["label"].null_count() == 0
    keys = ["cell_id", "as_of", "horizon"]
    for as_of in origins:
        alone = build_cell_frame(
            _cut(src, as_of), [as_of], PLACES, s, horizons=[1, 3], with_label=False
        )
        mine = together.filter(pl.col("as_of") == as_of).drop("label")
        assert mine.height > 0
        assert_frame_equal(mine.sort(keys), alone.sort(keys), check_exact=False, rel_tol=1e-9)
    # the corrections matter: seen from after them, the same origin reads differently
    late = build_cell_frame(
        _cut(src, date(2025, 9, 30)), [date(2025, 3, 2)], PLACES, s, horizons=[1], with_label=False
    )
    early = together.filter((pl.col("as_of") == date(2025, 3, 2)) & (pl.col("horizon") == 1)).drop(
        "label"
    )
    assert not late.sort(keys).equals(early.sort(keys))


def test_the_batched_universe_equals_cell_universe() -> None:
    src = _versioned(random.Random(5))
    incidents = src.cell_incidents(8).filter(visible_as_of(TABLES["incidents"], date(2025, 9, 1)))
    for k in (1, 2):
        places = PlacesConfig(h3_resolution=8, k_ring=k, universe_lookback_years=1)
        pairs = ring_pairs(incidents["cell_id"].to_list(), k)
        for as_of in (date(2023, 5, 1), date(2024, 3, 6), date(2025, 6, 29)):
            want = cell_universe(incidents.lazy(), as_of, places)
            assert_frame_equal(universe_at(incidents.lazy(), as_of, places, pairs), want)
            assert want.height > 0 or as_of < date(2023, 6, 1)


def _incident_rows(rng: random.Random, n: int, first: datetime, last: datetime) -> pl.DataFrame:
    cells = [CENTRE, *sorted(h3.grid_ring(CENTRE, 1))]
    span = int((last - first).total_seconds() // 60)
    rows = []
    for _ in range(n):
        reg = first + timedelta(minutes=rng.randrange(span))
        lat, lon = h3.cell_to_latlng(rng.choice(cells))
        rows.append(
            {
                "incident_id": f"i{rng.randrange(10**9)}",
                "occurred_at": reg - timedelta(hours=rng.randrange(1, 200)),
                "registered_at": reg,
                "region": "AST",
                "district": rng.choice(["AST-U1", "AST-U2"]),
                "lat": lat,
                "lon": lon,
                "crime_type": rng.choice(["theft", "assault", "drugs"]),
            }
        )
    schema = {c.name: c.dtype for c in TABLES["incidents"].columns}
    return pl.DataFrame(rows, schema=schema).unique("incident_id")


def test_two_clocks_through_the_store_a_later_delivery_does_not_leak(tmp_path: Path) -> None:
    from features.ingest import ingest_delivery
    from tests.factories import write_delivery

    rng = random.Random(11)
    d1_at = datetime(2025, 7, 15, 23, 59, 59, tzinfo=UTC)
    d2_at = datetime(2025, 10, 1, 23, 59, 59, tzinfo=UTC)
    old = _incident_rows(rng, 600, datetime(2024, 1, 1, tzinfo=UTC), d1_at)
    new = _incident_rows(rng, 150, d1_at + timedelta(hours=1), d2_at - timedelta(hours=1))
    recent = old.filter(pl.col("registered_at") > datetime(2025, 6, 1, tzinfo=UTC))
    fixed_id, dropped_id = recent["incident_id"][0], recent["incident_id"][1]
    corrected = old.with_columns(
        pl.when(pl.col("incident_id") == fixed_id)
        .then(pl.lit(h3.cell_to_latlng(FAR)[0]))
        .otherwise(pl.col("lat"))
        .alias("lat"),
        pl.when(pl.col("incident_id") == fixed_id)
        .then(pl.lit(h3.cell_to_latlng(FAR)[1]))
        .otherwise(pl.col("lon"))
        .alias("lon"),
        pl.when(pl.col("incident_id") == fixed_id)
        .then(pl.lit("drugs"))
        .otherwise(pl.col("crime_type"))
        .alias("crime_type"),
    ).filter(pl.col("incident_id") != dropped_id)
    full = tmp_path / "full"
    ingest_delivery(
        write_delivery(tmp_path / "d1", {"incidents": old}, extract_id="d1", extracted_at=d1_at),
        full,
    )
    ingest_delivery(
        write_delivery(
            tmp_path / "d2",
            {"incidents": pl.concat([corrected, new])},
            extract_id="d2",
            extracted_at=d2_at,
        ),
        full,
    )
    s = spec()
    origins = [date(2025, 7, 13), date(2025, 8, 31)]
    together = build_cell_frame(
        load_sources(OfflineStore(full)), origins, PLACES, s, horizons=[1, 2], with_label=True
    )
    keys = ["cell_id", "as_of", "horizon"]
    for as_of in origins:
        cutoff = datetime.combine(as_of + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        known = pl.concat([old, new]).filter(pl.col("registered_at") < cutoff)
        cut_home = tmp_path / f"cut-{as_of}"
        stamp = cutoff - timedelta(seconds=1)
        ingest_delivery(
            write_delivery(
                tmp_path / f"c-{as_of}",
                {"incidents": known},
                extract_id=f"c{as_of}",
                extracted_at=stamp,
            ),
            cut_home,
        )
        alone = build_cell_frame(
            load_sources(OfflineStore(cut_home)),
            [as_of],
            PLACES,
            s,
            horizons=[1, 2],
            with_label=False,
        )
        mine = together.filter(pl.col("as_of") == as_of).drop("label")
        assert mine.height > 0
        assert_frame_equal(mine.sort(keys), alone.sort(keys), check_exact=False, rel_tol=1e-9)
    # the forecast weeks ended before the last extraction, so every label is known
    assert together["label"].null_count() == 0
