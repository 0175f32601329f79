"""The hotspot store: the materialised places forecast the service answers from.

Why a table and not the forecast file: the service may run as several workers and on
PostgreSQL; the forecast is computed once (`riskcast places materialize`, which calls
`training.places.forecast.forecast_cells`) and read by every request, ranked per unit and week
by the database. It lives in the service's database (``RISKCAST_DATABASE_URL``, else the SQLite
file under the home), beside the access log that records every read of it.

Two tables: ``hotspot_materializations`` (one row per materialisation: when, as of which date,
which model version, which weeks, which units) and ``hotspot_forecasts`` (one row per cell and
week, the columns of the forecast in docs/PLACES.md plus ``materialized_at``). A new
materialisation is written in one transaction: its header and all its rows appear together or
not at all, so readers keep being answered from the previous one until the new one is complete.
The previous materialisation is kept (a reader that looked up its id just before the commit
still finds its rows); older ones are deleted in the same transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import h3
import polars as pl
import sqlalchemy as sa

from riskcast.clock import utcnow
from riskcast.errors import InputError, StoreError
from serving.db import UtcDateTime

FORECAST_COLUMNS: dict[str, pl.DataType] = {
    "cell_id": pl.String(),
    "h3_resolution": pl.Int32(),
    "region": pl.String(),
    "district": pl.String(),
    "lat": pl.Float64(),
    "lon": pl.Float64(),
    "area_km2": pl.Float64(),
    "as_of": pl.Date(),
    "horizon": pl.Int32(),
    "week_start": pl.Date(),
    "expected_count": pl.Float64(),
    "lower_80": pl.Float64(),
    "upper_80": pl.Float64(),
    "reasons": pl.String(),
    "model_name": pl.String(),
    "model_version": pl.String(),
}
"""The forecast's columns (docs/PLACES.md, "The forecast") and the types they are stored as."""

NULLABLE = {"district"}
KEEP = 2
"""Materialisations kept: the new one and the one before (see the module's docstring)."""
CHUNK = 5000

metadata = sa.MetaData()

materializations = sa.Table(
    "hotspot_materializations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("materialized_at", UtcDateTime(), nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("model_name", sa.String(100), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("weeks", sa.Text, nullable=False),  # JSON list of week_start dates
    sa.Column("units", sa.Text, nullable=False),  # JSON {region: [districts]}
    sa.Column("rows", sa.Integer, nullable=False),
)

forecasts = sa.Table(
    "hotspot_forecasts",
    metadata,
    sa.Column("materialization", sa.Integer, nullable=False),
    sa.Column("cell_id", sa.String(20), nullable=False),
    sa.Column("h3_resolution", sa.Integer, nullable=False),
    sa.Column("region", sa.String(64), nullable=False),
    sa.Column("district", sa.String(64), nullable=True),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("lon", sa.Float, nullable=False),
    sa.Column("area_km2", sa.Float, nullable=False),
    sa.Column("as_of", sa.Date, nullable=False),
    sa.Column("horizon", sa.Integer, nullable=False),
    sa.Column("week_start", sa.Date, nullable=False),
    sa.Column("expected_count", sa.Float, nullable=False),
    sa.Column("lower_80", sa.Float, nullable=False),
    sa.Column("upper_80", sa.Float, nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("model_name", sa.String(100), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("materialized_at", UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint("materialization", "cell_id", "week_start"),
    sa.Index("ix_hotspot_unit_week", "materialization", "region", "week_start"),
)


@dataclass(frozen=True)
class HotspotMaterialization:
    """What one materialisation holds: the weeks (horizon 1 first) and the units with cells."""

    id: int
    materialized_at: datetime
    as_of: date
    model_name: str
    model_version: str
    weeks: tuple[date, ...]
    units: dict[str, tuple[str, ...]]  # region -> its districts (with cells)
    rows: int

    def describe(self) -> str:
        return (
            f"{self.model_name} version {self.model_version} as of {self.as_of}: "
            f"{self.rows:,} cell-weeks, weeks {self.weeks[0]} to {self.weeks[-1]}"
        )


def check_forecast(frame: pl.DataFrame) -> pl.DataFrame:
    """The forecast with its columns in the stored types, or `InputError` naming the column and
    the first offending row: the service must never rank cells from a half-valid forecast."""
    missing = [c for c in FORECAST_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"forecast: missing columns {missing}")
    if frame.is_empty():
        raise InputError("forecast: no rows (no cell was forecast)")
    try:
        data = frame.select(pl.col(c).cast(t, strict=True) for c, t in FORECAST_COLUMNS.items())
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"forecast: a column has the wrong type: {exc}") from exc
    for column in FORECAST_COLUMNS:
        if column not in NULLABLE and data[column].null_count():
            row = int(data[column].is_null().arg_max() or 0)
            raise InputError(f"forecast: column {column!r} is null in row {row}")
    numbers = ("lat", "lon", "area_km2", "expected_count", "lower_80", "upper_80")
    for column in numbers:
        bad = ~data[column].is_finite()
        if column in ("area_km2", "expected_count", "lower_80", "upper_80"):
            bad = bad | (data[column] < 0)
        if bad.any():
            rule = "finite" if column in ("lat", "lon") else "a finite number >= 0"
            raise InputError(
                f"forecast: column {column!r} is not {rule} in row {int(bad.arg_max() or 0)}"
            )
    crossed = data["lower_80"] > data["upper_80"]
    if crossed.any():
        raise InputError(f"forecast: lower_80 > upper_80 in row {int(crossed.arg_max() or 0)}")
    dupes = data.select("cell_id", "week_start").is_duplicated()
    if dupes.any():
        raise InputError(
            f"forecast: (cell_id, week_start) repeats in row {int(dupes.arg_max() or 0)}"
        )
    not_monday = data["week_start"].dt.weekday() != 1
    if not_monday.any():
        row = int(not_monday.arg_max() or 0)
        raise InputError(f"forecast: week_start is not a Monday in row {row}")
    versions = data.select("model_name", "model_version").unique()
    if versions.height != 1:
        raise InputError(
            f"forecast: one model version per materialization, found {versions.rows()}"
        )
    for cell in data["cell_id"].unique().to_list():
        if not h3.is_valid_cell(cell):
            raise InputError(f"forecast: cell_id {cell!r} is not an H3 cell")
    for i, text in enumerate(data["reasons"].to_list()):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if not isinstance(parsed, list) or not all(isinstance(r, dict) for r in parsed):
            raise InputError(f"forecast: reasons in row {i} is not a JSON list of objects")
    return data


def _units(data: pl.DataFrame) -> dict[str, list[str]]:
    grouped = (
        data.group_by("region").agg(pl.col("district").drop_nulls().unique().sort()).sort("region")
    )
    return {r: list(d) for r, d in grouped.iter_rows()}


class HotspotStore:
    """The hotspot tables on the service's engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def create(self) -> HotspotStore:
        """Create the tables if missing (idempotent, like the service's other tables)."""
        try:
            metadata.create_all(self.engine)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"hotspot tables: {exc}") from exc
        return self

    def materialize(
        self, frame: pl.DataFrame, *, at: datetime | None = None
    ) -> HotspotMaterialization:
        """Store ``frame`` (the forecast) as the current materialisation, atomically; the one
        before it is kept, older ones are deleted in the same transaction."""
        data = check_forecast(frame).sort("region", "week_start", "cell_id")
        stamp = at or utcnow()
        weeks = sorted(set(data["week_start"].to_list()))
        units = _units(data)
        name, version = data.row(0, named=True)["model_name"], data["model_version"][0]
        as_of = min(data["as_of"].to_list())
        self.create()
        with self.engine.begin() as conn:
            inserted = conn.execute(
                sa.insert(materializations).values(
                    materialized_at=stamp,
                    as_of=as_of,
                    model_name=name,
                    model_version=version,
                    weeks=json.dumps([w.isoformat() for w in weeks]),
                    units=json.dumps(units),
                    rows=data.height,
                )
            ).inserted_primary_key
            assert inserted is not None
            new_id = int(inserted[0])
            rows = data.with_columns(
                pl.lit(new_id, pl.Int64).alias("materialization"),
                pl.lit(stamp, pl.Datetime("us", "UTC")).alias("materialized_at"),
            )
            for start in range(0, rows.height, CHUNK):
                conn.execute(sa.insert(forecasts), rows.slice(start, CHUNK).to_dicts())
            kept = sa.select(materializations.c.id).order_by(materializations.c.id.desc())
            keep = [r[0] for r in conn.execute(kept.limit(KEEP))]
            conn.execute(sa.delete(forecasts).where(forecasts.c.materialization.not_in(keep)))
            conn.execute(sa.delete(materializations).where(materializations.c.id.not_in(keep)))
        found = self.current()
        assert found is not None and found.id == new_id
        return found

    def current(self) -> HotspotMaterialization | None:
        """The newest complete materialisation, or None when nothing was materialised (or the
        tables do not exist yet)."""
        query = sa.select(materializations).order_by(materializations.c.id.desc()).limit(1)
        try:
            with self.engine.connect() as conn:
                row = conn.execute(query).mappings().first()
        except sa.exc.ProgrammingError:
            return None
        except sa.exc.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise
        if row is None:
            return None
        return HotspotMaterialization(
            id=int(row["id"]),
            materialized_at=row["materialized_at"],
            as_of=row["as_of"],
            model_name=row["model_name"],
            model_version=row["model_version"],
            weeks=tuple(date.fromisoformat(w) for w in json.loads(row["weeks"])),
            units={r: tuple(d) for r, d in json.loads(row["units"]).items()},
            rows=int(row["rows"]),
        )

    def unit_week(
        self,
        materialization: HotspotMaterialization,
        region: str,
        district: str | None,
        week: date,
        limit: int | None = None,
    ) -> pl.DataFrame:
        """The unit's cells in ``week``, highest expected count first (ties: cell id), with a
        ``rank`` column; at most ``limit`` rows."""
        t = forecasts
        query = sa.select(*(t.c[c] for c in FORECAST_COLUMNS), t.c.materialized_at).where(
            t.c.materialization == materialization.id,
            t.c.region == region,
            t.c.week_start == week,
        )
        if district is not None:
            query = query.where(t.c.district == district)
        query = query.order_by(t.c.expected_count.desc(), t.c.cell_id)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        schema: dict[str, Any] = {**FORECAST_COLUMNS, "materialized_at": pl.Datetime("us", "UTC")}
        frame = pl.DataFrame(rows, schema=schema, orient="row")
        return frame.with_row_index("rank", offset=1).with_columns(pl.col("rank").cast(pl.Int64))

    def unit_totals(
        self, materialization: HotspotMaterialization, region: str, district: str | None, week: date
    ) -> tuple[int, float]:
        """How many cells the unit has in ``week`` and their summed expected count."""
        t = forecasts
        query = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(t.c.expected_count), 0.0))
        query = query.where(
            t.c.materialization == materialization.id,
            t.c.region == region,
            t.c.week_start == week,
        )
        if district is not None:
            query = query.where(t.c.district == district)
        with self.engine.connect() as conn:
            count, total = conn.execute(query).one()
        return int(count), float(total)
