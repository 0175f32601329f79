"""The online store: the latest feature vector of each entity, for scoring one request at a time.

SQLAlchemy Core on SQLite (the embedded default, a file under ``RISKCAST_HOME``) or PostgreSQL
(``RISKCAST_DATABASE_URL``). Two tables:

- ``feature_vectors``: one row per entity (key, as_of, spec_hash, vector as JSON, written_at);
- ``feature_materializations``: one row per materialisation (as_of, spec_hash, the feature
  names and dtypes needed to decode vectors, rows, written_at); the latest is current.

A materialisation replaces the previous one in one transaction (delete + bulk insert: ``COPY``
on PostgreSQL, ``executemany`` on SQLite), so readers see either the old vectors or the new ones,
never a mix. Vectors are JSON so a new feature spec needs no schema migration.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from features.errors import InputError, StoreError
from features.settings import Settings, get_settings

VECTORS = "feature_vectors"
MATERIALIZATIONS = "feature_materializations"
VECTOR = "vector"

_DTYPES: dict[str, pl.DataType] = {
    "Int32": pl.Int32(),
    "Int64": pl.Int64(),
    "Float64": pl.Float64(),
    "String": pl.String(),
    "Boolean": pl.Boolean(),
    "Date": pl.Date(),
}


@dataclass(frozen=True)
class Materialization:
    """What the online store currently holds."""

    as_of: date
    spec_hash: str
    features: dict[str, pl.DataType]
    rows: int
    written_at: datetime


class OnlineStore(Protocol):
    """Latest vectors per entity: written in bulk by `materialize`, read by id lists."""

    def materialize(
        self, frame: pl.DataFrame | pl.LazyFrame, as_of: date, spec_hash: str
    ) -> Materialization:
        """Replace every stored vector with ``frame`` (key + feature columns), atomically."""
        ...

    def get_vectors(self, ids: Sequence[str]) -> pl.DataFrame:
        """Vectors of the given ids (unknown ids are absent), in the order asked, one query."""
        ...

    def current(self) -> Materialization | None:
        """The current materialisation, or None if nothing was materialised yet."""
        ...


class SqlOnlineStore:
    """`OnlineStore` on SQLite or PostgreSQL; ``schema`` isolates it (PostgreSQL only)."""

    def __init__(self, url: str, *, schema: str | None = None, key: str = "person_id") -> None:
        self.url = url
        self.key = key
        self.engine = sa.create_engine(url, future=True)
        self.dialect = self.engine.dialect.name
        if schema is not None and self.dialect != "postgresql":
            raise InputError(f"schema {schema!r}: only PostgreSQL online stores take a schema")
        self.metadata = sa.MetaData(schema=schema)
        self.vectors = sa.Table(
            VECTORS,
            self.metadata,
            sa.Column(key, sa.String(128), primary_key=True),
            sa.Column("as_of", sa.Date, nullable=False),
            sa.Column("spec_hash", sa.String(64), nullable=False),
            sa.Column(VECTOR, sa.Text, nullable=False),
            sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        )
        self.materializations = sa.Table(
            MATERIALIZATIONS,
            self.metadata,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("as_of", sa.Date, nullable=False),
            sa.Column("spec_hash", sa.String(64), nullable=False),
            sa.Column("features", sa.Text, nullable=False),
            sa.Column("rows", sa.Integer, nullable=False),
            sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        )

    def create(self) -> None:
        """Create the tables if they do not exist (idempotent; called by `materialize`)."""
        try:
            self.metadata.create_all(self.engine)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"online store at {self.where}: {exc}") from exc

    def dispose(self) -> None:
        self.engine.dispose()

    # ---- writing -----------------------------------------------------------------------------
    def materialize(
        self, frame: pl.DataFrame | pl.LazyFrame, as_of: date, spec_hash: str
    ) -> Materialization:
        data = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
        if self.key not in data.columns:
            raise InputError(f"materialize: the frame has no {self.key!r} column")
        if data[self.key].is_duplicated().any():
            raise InputError(f"materialize: {self.key} is not unique in the frame")
        features = [c for c in data.columns if c not in (self.key, "as_of")]
        dtypes = {c: _dtype_name(c, data.schema[c]) for c in features}
        written_at = datetime.now(UTC)
        rows = data.select(
            pl.col(self.key).cast(pl.String),
            pl.lit(as_of, dtype=pl.Date).alias("as_of"),
            pl.lit(spec_hash).alias("spec_hash"),
            pl.struct(features).struct.json_encode().alias(VECTOR),
            pl.lit(written_at, dtype=pl.Datetime("us", "UTC")).alias("written_at"),
        )
        self.create()
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.delete(self.vectors))
                if self.dialect == "postgresql":
                    self._copy(conn, rows)
                elif rows.height:
                    conn.execute(sa.insert(self.vectors), rows.to_dicts())
                conn.execute(
                    sa.insert(self.materializations).values(
                        as_of=as_of,
                        spec_hash=spec_hash,
                        features=json.dumps(dtypes),
                        rows=rows.height,
                        written_at=written_at,
                    )
                )
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"online store at {self.where}: {exc}") from exc
        return Materialization(
            as_of, spec_hash, {k: _DTYPES[v] for k, v in dtypes.items()}, rows.height, written_at
        )

    def _copy(self, conn: sa.Connection, rows: pl.DataFrame) -> None:
        """PostgreSQL COPY in the caller's transaction, streamed as CSV from Polars."""
        raw: Any = conn.connection.driver_connection
        target = self.engine.dialect.identifier_preparer.format_table(self.vectors)
        columns = ", ".join(f'"{c}"' for c in rows.columns)
        buffer = io.BytesIO()
        rows.write_csv(buffer, include_header=False, datetime_format="%Y-%m-%dT%H:%M:%S%.fZ")
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {target} ({columns}) FROM STDIN WITH (FORMAT csv)") as copy,
        ):
            view = buffer.getbuffer()
            step = 1 << 20
            for start in range(0, len(view), step):
                copy.write(view[start : start + step])

    # ---- reading -----------------------------------------------------------------------------
    def current(self) -> Materialization | None:
        m = self.materializations
        query = sa.select(m).order_by(m.c.id.desc()).limit(1)
        try:
            with self.engine.connect() as conn:
                row = conn.execute(query).mappings().first()
        except sa.exc.OperationalError:
            return None  # not created yet (SQLite has no such table)
        except sa.exc.ProgrammingError:
            return None  # not created yet (PostgreSQL: undefined table)
        if row is None:
            return None
        names: dict[str, str] = json.loads(row["features"])
        return Materialization(
            as_of=row["as_of"],
            spec_hash=row["spec_hash"],
            features={k: _DTYPES[v] for k, v in names.items()},
            rows=row["rows"],
            written_at=row["written_at"],
        )

    def get_vectors(self, ids: Sequence[str]) -> pl.DataFrame:
        current = self.current()
        features = current.features if current else {}
        schema: dict[str, pl.DataType] = {
            self.key: pl.String(),
            "as_of": pl.Date(),
            "spec_hash": pl.String(),
            "written_at": pl.Datetime("us", "UTC"),
            **features,
        }
        wanted = list(dict.fromkeys(ids))
        if current is None or not wanted:
            return pl.DataFrame(schema=schema)
        v = self.vectors
        columns = [v.c[self.key], v.c.as_of, v.c.spec_hash, v.c.written_at, v.c[VECTOR]]
        if self.dialect == "postgresql":
            param = sa.bindparam("ids", type_=postgresql.ARRAY(sa.String))
            query = sa.select(*columns).where(v.c[self.key] == sa.any_(param))
            params: dict[str, Any] = {"ids": wanted}
        else:  # one bound JSON array: no limit on the number of ids, still one statement
            listed = sa.func.json_each(sa.bindparam("ids")).table_valued("value")
            query = sa.select(*columns).where(v.c[self.key].in_(sa.select(listed.c.value)))
            params = {"ids": json.dumps(wanted)}
        try:
            with self.engine.connect() as conn:
                fetched = conn.execute(query, params).all()
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"online store at {self.where}: {exc}") from exc
        found = pl.DataFrame(
            [tuple(r) for r in fetched],
            schema={
                self.key: pl.String(),
                "as_of": pl.Date(),
                "spec_hash": pl.String(),
                "written_at": pl.Datetime("us", "UTC"),
                VECTOR: pl.String(),
            },
            orient="row",
        )
        decoded = found.with_columns(pl.col(VECTOR).str.json_decode(pl.Struct(features))).unnest(
            VECTOR
        )
        order = pl.DataFrame({self.key: wanted}, schema={self.key: pl.String()})
        return order.join(decoded, on=self.key, how="inner", maintain_order="left").select(
            list(schema)
        )

    @property
    def where(self) -> str:
        """The database URL without its password (for messages)."""
        return self.engine.url.render_as_string(hide_password=True)


def _dtype_name(column: str, dtype: pl.DataType) -> str:
    for name, known in _DTYPES.items():
        if dtype == known:
            return name
    raise InputError(f"materialize: feature {column!r} has dtype {dtype}, not storable online")


def open_online_store(
    settings: Settings | None = None, *, schema: str | None = None
) -> SqlOnlineStore:
    """The configured online store: ``RISKCAST_DATABASE_URL``, else SQLite under the home."""
    settings = settings or get_settings()
    if settings.database_url is None:
        settings.home.mkdir(parents=True, exist_ok=True)
    return SqlOnlineStore(settings.effective_database_url, schema=schema)
