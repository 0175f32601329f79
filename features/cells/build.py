"""The point-in-time cell frame: one row per (cell, as-of date T, forecast week), docs/PLACES.md.

Why it is fast: the incidents are counted once per (cell, registration week) into a dense array
(cells x weeks) and every lag, window and near-repeat intensity of every origin is a slice or a
difference of cumulative sums of that array, not a new filter of the incidents per origin.

Why it is still point-in-time (two clocks):

- Every feature of origin T reads whole weeks on the knowledge clock (``registered_at``,
  ``submitted_at``) that ended by the end of T (`anchor_week`): a row counted there was known at
  T by construction. The days of T's own unfinished week are left out, never half-counted.
- Corrections: the store keeps every version of a row (``_valid_from``/``_valid_to``). Origins are
  grouped by which versions they see (`version_groups`); rows never corrected are shared by all
  groups, so with the usual handful of deliveries there are one or two groups, and each group's
  arrays hold exactly the versions `visible_as_of` shows at its origins.
- Releases are filtered per origin on ``recorded_at`` (a release is often recorded late).

The label (incidents *registered* in the forecast week, as the latest delivery knows them; null
if that week had not ended by the last extraction) is the only thing that looks past T.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

from features.cells.cells import forecast_week_start
from features.cells.config import PlacesConfig
from features.cells.sources import CellSources
from features.cells.spec import CellSpec
from features.cells.universe import ring_pairs, universe_at
from features.cells.weekly import Grid, incident_features, make_grid, weekly_arrays
from features.contract import TABLES
from features.store.offline import VALID_FROM, VALID_TO, end_of_day, visible_as_of

Progress = Callable[[str, float | None], None]
KEYS = ("cell_id", "h3_resolution", "region", "district", "ring", "as_of", "horizon", "week_start")
UTC_TS = pl.Datetime("us", "UTC")


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def anchor_week(as_of: date) -> date:
    """The Monday of the last whole week (Mon..Sun) that ended by the end of ``as_of``."""
    return monday(as_of + timedelta(days=1)) - timedelta(days=7)


# ---- versions ---------------------------------------------------------------------------------
def _seen(frame: pl.DataFrame, as_of: date) -> pl.Series:
    """Which versions were current at the end of ``as_of`` (the knowledge column aside)."""
    cutoff = pl.lit(end_of_day(as_of), dtype=UTC_TS)
    expr = (pl.col(VALID_FROM).is_null() | (pl.col(VALID_FROM) < cutoff)) & (
        pl.col(VALID_TO).is_null() | (pl.col(VALID_TO) >= cutoff)
    )
    return frame.select(expr.alias("_seen")).to_series()


def _plain(frame: pl.DataFrame) -> pl.Series:
    return frame.select(pl.col(VALID_FROM).is_null() & pl.col(VALID_TO).is_null()).to_series()


def version_groups(
    tables: Sequence[pl.DataFrame | None], origins: Sequence[date]
) -> list[tuple[list[date], list[pl.DataFrame | None]]]:
    """Origins grouped by the versions they see, with each table as those origins see it
    (except the knowledge-time condition, which the features apply through their windows).

    A row never corrected (no ``_valid_from``/``_valid_to``) is in every group; only the
    corrected rows decide the grouping, so the groups are few."""
    versioned = [None if t is None else t.filter(~_plain(t)) for t in tables]
    groups: dict[bytes, list[date]] = {}
    for as_of in sorted(set(origins)):
        key = b"".join(
            b"-" if v is None else _seen(v, as_of).to_numpy().tobytes() for v in versioned
        )
        groups.setdefault(key, []).append(as_of)
    out: list[tuple[list[date], list[pl.DataFrame | None]]] = []
    for dates in groups.values():
        seen = [
            None if t is None else t.filter(_seen(t, dates[0]).fill_null(False)) for t in tables
        ]
        out.append((dates, seen))
    return out


# ---- district features ------------------------------------------------------------------------
def _district_weekly(
    frame: pl.DataFrame | None, clock: str, groups: dict[str, list[str]]
) -> pl.DataFrame | None:
    """Rows per (district, group, week on ``clock``); a category may sit in several groups."""
    if frame is None or not groups:
        return None
    parts = [
        frame.filter(pl.col("category").is_in(cats) & pl.col("district").is_not_null())
        .group_by("district", pl.col(clock).dt.date().dt.truncate("1w").alias("week"))
        .agg(pl.len().cast(pl.Float64).alias("n"))
        .with_columns(pl.lit(g).alias("group"))
        for g, cats in groups.items()
    ]
    return pl.concat(parts).select("district", "group", "week", "n")


def _resident_district(
    frame: pl.DataFrame | None, persons: pl.DataFrame | None
) -> pl.DataFrame | None:
    """``frame`` with the person's district (persons as seen by the group); None if either lacks."""
    if frame is None or persons is None:
        return None
    districts = persons.select("person_id", "district").unique("person_id", keep="last")
    return frame.join(districts, on="person_id", how="inner")


def _district_values(
    weekly: pl.DataFrame | None, anchor: date, weeks: list[int], prefix: str, *, lags: bool
) -> pl.DataFrame | None:
    """Per district one column per (group, lag or window) as of ``anchor``."""
    if weekly is None:
        return None
    cols = []
    for k in weeks:
        if lags:
            sel = pl.col("week") == pl.lit(anchor - timedelta(weeks=k - 1))
            suffix = f"lag{k}"
        else:
            sel = (pl.col("week") <= pl.lit(anchor)) & (
                pl.col("week") > pl.lit(anchor - timedelta(weeks=k))
            )
            suffix = f"{k}w"
        for g in weekly["group"].unique().sort().to_list():
            cols.append(
                pl.col("n")
                .filter(sel & (pl.col("group") == g))
                .sum()
                .alias(f"{prefix}_{g}_{suffix}")
            )
    return weekly.group_by("district").agg(cols)


def _released(releases: pl.DataFrame | None, as_of: date, spec: CellSpec) -> pl.DataFrame | None:
    d = spec.district
    if releases is None or d.release_window_weeks is None:
        return None
    cutoff = pl.lit(end_of_day(as_of), dtype=UTC_TS)
    start = as_of - timedelta(weeks=d.release_window_weeks)
    return (
        releases.filter(
            (pl.col("recorded_at") < cutoff)
            & pl.col("sentence").is_in(d.release_sentences)
            & (pl.col("released_at") > pl.lit(start))
            & (pl.col("released_at") <= pl.lit(as_of))
            & pl.col("district").is_not_null()
        )
        .group_by("district")
        .agg(
            pl.col("person_id")
            .n_unique()
            .cast(pl.Float64)
            .alias(f"district_released_{d.release_window_weeks}w")
        )
    )


# ---- the frame --------------------------------------------------------------------------------
def _seasonality(weeks: list[date], spec: CellSpec) -> pl.DataFrame:
    """Per forecast week: sine/cosine of its ISO week and the configured holidays in it."""
    rows = []
    for week in sorted(set(weeks)):
        angle = 2 * math.pi * (week.isocalendar()[1] - 1) / 52.0
        holidays = spec.seasonality.holidays_between(week, week + timedelta(days=6))
        rows.append((week, math.sin(angle), math.cos(angle), float(holidays)))
    return pl.DataFrame(
        rows,
        schema={
            "week_start": pl.Date,
            "week_sin": pl.Float64,
            "week_cos": pl.Float64,
            "holidays_in_week": pl.Float64,
        },
        orient="row",
    )


def _relevant(
    incidents: pl.DataFrame, sources: CellSources, spec: CellSpec
) -> list[pl.DataFrame | None]:
    """The columns and rows any feature can read (every version of them): incidents, appeals,
    admin offences of the configured categories, releases of the configured sentences, and the
    persons these name. Filtering a version on its own values keeps `visible_as_of` exact."""
    versions = [VALID_FROM, VALID_TO]
    keep = ["cell_id", "registered_at", "region", "district", "crime_type", "lat", "lon"]
    keep += versions
    d = spec.district
    admin, releases, persons = sources.admin_offences, sources.releases, sources.persons
    if admin is not None:
        wanted = sorted({c for cats in d.admin_groups.values() for c in cats})
        admin = admin.filter(pl.col("category").is_in(wanted))
    if releases is not None:
        sentences = d.release_sentences if d.release_window_weeks is not None else []
        releases = releases.filter(pl.col("sentence").is_in(sentences))
    if persons is not None:
        named = [f["person_id"] for f in (admin, releases) if f is not None]
        ids = pl.concat(named).unique() if named else pl.Series("person_id", [], pl.Utf8)
        persons = persons.filter(pl.col("person_id").is_in(ids.implode()))
    return [incidents.select(keep), sources.appeals, admin, releases, persons]


def _label_array(
    incidents: pl.DataFrame, last_day: date, grid: Grid, first: date, last: date
) -> np.ndarray:
    """Registrations per (cell, week ``first``..``last``) as the latest delivery knows them."""
    latest = incidents.filter(visible_as_of(TABLES["incidents"], last_day))
    weeks = Grid(grid.cells, grid.index, first, (last - first).days // 7 + 1, {})
    total, _ = weekly_arrays(latest, weeks, [])
    return total


def build_cell_frame(
    sources: CellSources,
    origins: list[date],
    places: PlacesConfig,
    spec: CellSpec,
    *,
    horizons: list[int],
    with_label: bool,
    progress: Progress | None = None,
) -> pl.DataFrame:
    """One row per (cell of the universe at T, origin T, horizon) with the spec's features."""
    say = progress or (lambda _stage, _fraction: None)
    origins = sorted(set(origins))
    if not origins:
        return pl.DataFrame()
    say("cell frame: assigning cells", None)
    incidents = sources.cell_incidents(places.h3_resolution)
    lookback = spec.max_lookback_weeks()
    cell_ids = incidents["cell_id"].to_list()
    grid = make_grid(
        cell_ids,
        places.k_ring,
        [r.distance for r in spec.rings],
        anchor_week(origins[0]) - timedelta(weeks=lookback - 1),
        anchor_week(origins[-1]),
    )
    pairs = ring_pairs(cell_ids, places.k_ring)
    cell_index = pl.DataFrame(
        {"cell_id": grid.cells, "_idx": np.arange(len(grid.cells))},
        schema={"cell_id": pl.Utf8, "_idx": pl.Int64},
    )
    d = spec.district
    tables = _relevant(incidents, sources, spec)
    bases: list[pl.DataFrame] = []
    columns: dict[str, list[np.ndarray]] = {}
    done = 0
    for dates, (inc, appeals, admin, releases, persons) in version_groups(tables, origins):
        assert inc is not None
        say("cell frame: counting weeks", done / len(origins))
        per_anchor = incident_features(inc, grid, spec, sorted({anchor_week(t) for t in dates}))
        appeal_weekly = _district_weekly(appeals, "submitted_at", d.appeal_groups)
        admin_weekly = _district_weekly(
            _resident_district(admin, persons), "registered_at", d.admin_groups
        )
        resident_releases = _resident_district(releases, persons)
        for as_of in dates:
            say("cell frame: origins", done / len(origins))
            done += 1
            universe = universe_at(inc.lazy(), as_of, places, pairs)
            if universe.is_empty():
                continue
            anchor = anchor_week(as_of)
            base = universe.drop("incidents").join(cell_index, on="cell_id", how="left")
            idx = base["_idx"].to_numpy()
            for name, vector in per_anchor[anchor].items():
                columns.setdefault(name, []).append(vector[idx])
            district: pl.DataFrame | None = None
            for extra in (
                _district_values(
                    appeal_weekly, anchor, d.appeal_lags_weeks, "district_appeals", lags=True
                ),
                _district_values(
                    appeal_weekly, anchor, d.appeal_windows_weeks, "district_appeals", lags=False
                ),
                _district_values(
                    admin_weekly, anchor, d.admin_windows_weeks, "district_admin", lags=False
                ),
                _released(resident_releases, as_of, spec),
            ):
                if extra is not None:
                    district = (
                        extra
                        if district is None
                        else district.join(extra, on="district", how="full", coalesce=True)
                    )
            base = base.with_columns(pl.lit(as_of, dtype=pl.Date).alias("as_of"))
            if district is not None:
                base = base.join(district, on="district", how="left")
            bases.append(base)
    say("cell frame: assembling", None)
    if not bases:
        return pl.DataFrame()
    frame = pl.concat(bases, how="diagonal_relaxed")
    counts = pl.DataFrame({n: np.concatenate(v) for n, v in columns.items()})
    frame = pl.concat([frame, counts], how="horizontal").with_columns(
        pl.when(pl.col("district").is_not_null())
        .then(pl.col(f"_cell_{w}w").sum().over("as_of", "district"))
        .alias(f"district_count_{w}w")
        for w in d.incident_windows_weeks
    )
    # week h after T: the Monday after T (Polars weekdays: Monday = 1) plus h-1 weeks
    next_monday = pl.col("as_of") + pl.duration(days=8 - pl.col("as_of").dt.weekday())
    frame = frame.join(
        pl.DataFrame({"horizon": horizons}, schema={"horizon": pl.Int32}), how="cross"
    ).with_columns(
        (next_monday + pl.duration(weeks=pl.col("horizon") - 1)).cast(pl.Date).alias("week_start")
    )
    weeks = [forecast_week_start(t, h) for t in origins for h in horizons]
    frame = frame.join(_seasonality(weeks, spec), on="week_start", how="left")
    if with_label:
        last_day = (
            sources.last_extracted.date()
            if isinstance(sources.last_extracted, datetime)
            else origins[-1]
        )
        first, last = min(weeks), max(weeks)
        array = _label_array(incidents, last_day, grid, first, last)
        offset = (pl.col("week_start") - pl.lit(first)).dt.total_days() // 7
        cols = frame.select(offset).to_series().to_numpy()
        counts_ = array[frame["_idx"].to_numpy(), cols].astype(np.int64)
        ended = (frame["week_start"] + timedelta(days=7) <= last_day).to_numpy()
        frame = frame.with_columns(
            pl.Series("label", counts_, dtype=pl.Int64),
            pl.Series("_ended", ended, dtype=pl.Boolean),
        ).with_columns(pl.when(pl.col("_ended")).then(pl.col("label")).alias("label"))
    say("cell frame: done", 1.0)
    inputs = [f for f in spec.model_inputs() if f not in KEYS]
    missing = [f for f in inputs if f not in frame.columns]
    label = ["label"] if with_label else []
    return frame.select(
        pl.col("cell_id").cast(pl.Utf8),
        pl.col("h3_resolution").cast(pl.Int32),
        pl.col("region").cast(pl.Utf8),
        pl.col("district").cast(pl.Utf8),
        pl.col("ring").cast(pl.Int32),
        pl.col("as_of").cast(pl.Date),
        pl.col("horizon").cast(pl.Int32),
        pl.col("week_start").cast(pl.Date),
        *[
            pl.lit(0.0).alias(f) if f in missing else pl.col(f).cast(pl.Float64).fill_null(0.0)
            for f in inputs
        ],
        *label,
    )
