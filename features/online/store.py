"""The online store: the latest feature vector of each entity, for scoring one request at a time.

SQLAlchemy Core on SQLite (the embedded default, a file under ``RISKCAST_HOME``) or PostgreSQL
(``RISKCAST_DATABASE_URL``). Two tables:

- ``feature_vectors``: one row per entity: the key (primary key), ``as_of``, ``spec_hash``,
  ``written_at`` and one typed column per feature (compact, and read without any decoding);
- ``feature_materializations``: one row per materialisation (as_of, spec_hash, the features
  and their dtypes, rows, written_at); the latest is current.

A materialisation is one transaction: the vectors are bulk-loaded (``COPY`` on PostgreSQL,
``executemany`` on SQLite) into a fresh table, which then replaces the live one by a rename.
Readers see the old vectors or the new ones, never a mix, and are held up only for the
instant of the swap, not for the load. A new feature spec needs no migration: the table is
made from the frame's columns every time.
"""

from __future__ import annotations

import io
import itertools
import json
import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from riskcast.clock import as_utc as _utc
from riskcast.db import make_engine, masked
from riskcast.errors import InputError, StoreError
from riskcast.settings import Settings, get_settings

VECTORS = "feature_vectors"
STAGING = "feature_vectors_next"
MATERIALIZATIONS = "feature_materializations"
FETCH_ROWS = 100_000  # rows per fetch when reading vectors back
LOAD_ROWS = 500_000  # rows per COPY (its CSV buffer) or executemany when writing them
_TICK = timedelta(microseconds=1)  # an erasure's materialisation is always a new one
META = ("as_of", "spec_hash", "written_at")

_TYPES: dict[str, tuple[pl.DataType, Any]] = {
    "Int32": (pl.Int32(), sa.Integer()),
    "Int64": (pl.Int64(), sa.BigInteger()),
    "Float64": (pl.Float64(), sa.Double()),
    "String": (pl.String(), sa.Text()),
    "Boolean": (pl.Boolean(), sa.Boolean()),
    "Date": (pl.Date(), sa.Date()),
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

    def get_columns(self, columns: Sequence[str], ids: Sequence[str] | None = None) -> pl.DataFrame:
        """The key, ``as_of`` and those of ``columns`` the current materialisation holds, for
        ``ids`` (in the order asked) or, with None, every stored entity: a narrow read, e.g.
        of the scope columns of a nation before only its model's population is loaded whole."""
        ...

    def current(self) -> Materialization | None:
        """The current materialisation, or None if nothing was materialised yet."""
        ...


class SqlOnlineStore:
    """`OnlineStore` on SQLite or PostgreSQL; ``schema`` isolates it (PostgreSQL only)."""

    def __init__(self, url: str, *, schema: str | None = None, key: str = "person_id") -> None:
        self.key = key
        self.schema = schema
        # rebuildable: SQLite's synchronous=NORMAL (re-materialised from the offline store)
        self.engine = make_engine(url, what="online store", rebuildable=True)
        self.dialect = self.engine.dialect.name
        if schema is not None and self.dialect != "postgresql":
            raise InputError(f"schema {schema!r}: only PostgreSQL online stores take a schema")
        self.metadata = sa.MetaData(schema=schema)
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

    @property
    def where(self) -> str:
        """The database URL without its password (for messages)."""
        return masked(self.engine.url)

    def dispose(self) -> None:
        self.engine.dispose()

    def _vectors(self, name: str, features: dict[str, str], pk_name: str | None = None) -> sa.Table:
        """The vectors table for these features (a fresh MetaData: its columns follow the spec)."""
        columns: list[sa.Column[Any]] = [
            sa.Column(self.key, sa.String(128), nullable=False),
            sa.Column("as_of", sa.Date, nullable=False),
            sa.Column("spec_hash", sa.String(64), nullable=False),
            sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
            *(sa.Column(f, _TYPES[t][1], nullable=True) for f, t in features.items()),
        ]
        pk = sa.PrimaryKeyConstraint(self.key, name=pk_name)
        return sa.Table(name, sa.MetaData(schema=self.schema), *columns, pk)

    # ---- writing -----------------------------------------------------------------------------
    def materialize(
        self, frame: pl.DataFrame | pl.LazyFrame, as_of: date, spec_hash: str
    ) -> Materialization:
        data = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
        self._check_keys(data)
        return self.materialize_parts([data], as_of, spec_hash)

    def materialize_parts(
        self, parts: Iterable[pl.DataFrame], as_of: date, spec_hash: str
    ) -> Materialization:
        """`materialize` from parts of the frame, each loaded into the staging table as it
        comes (the caller holds one part at a time, e.g. a Dask partition's file): the parts
        must have the same columns and disjoint keys (a repeated key is refused by the
        primary key, and then nothing is published). Loaded in slices of ``LOAD_ROWS``."""
        pending = iter(parts)
        first = next(pending, None)
        if first is None:
            raise InputError("materialize: no part to write")
        self._check_keys(first)
        features = [c for c in first.columns if c not in (self.key, "as_of")]
        clash = sorted(set(features) & set(META))
        if clash:
            raise InputError(f"materialize: feature names {clash} are reserved by the store")
        dtypes = {c: _dtype_name(c, first.schema[c]) for c in features}
        written_at = datetime.now(UTC)
        staging = self._vectors(STAGING, dtypes, f"{VECTORS}_pk_{uuid.uuid4().hex[:12]}")
        live = self._vectors(VECTORS, dtypes)
        quote = self.engine.dialect.identifier_preparer
        total = 0
        try:
            self.metadata.create_all(self.engine)
            with self.engine.begin() as conn:
                staging.drop(conn, checkfirst=True)  # a crashed run's leftover
                staging.create(conn)
                for part in itertools.chain([first], pending):
                    if part is not first:
                        self._check_keys(part)
                        self._check_same_columns(part, first)
                    rows = part.select(
                        pl.col(self.key).cast(pl.String),
                        pl.lit(as_of, dtype=pl.Date).alias("as_of"),
                        pl.lit(spec_hash).alias("spec_hash"),
                        pl.lit(written_at, dtype=pl.Datetime("us", "UTC")).alias("written_at"),
                        *features,
                    ).sort(self.key)  # in key order the primary-key index is appended to
                    for chunk in rows.iter_slices(LOAD_ROWS):
                        self._load(conn, staging, chunk)
                    total += rows.height
                    del rows
                live.drop(conn, checkfirst=True)  # readers wait from here to the commit only
                conn.execute(
                    sa.text(
                        f"ALTER TABLE {quote.format_table(staging)} "
                        f"RENAME TO {quote.quote(VECTORS)}"
                    )
                )
                conn.execute(
                    sa.insert(self.materializations).values(
                        as_of=as_of,
                        spec_hash=spec_hash,
                        features=json.dumps(dtypes),
                        rows=total,
                        written_at=written_at,
                    )
                )
        except _load_errors() as exc:  # the bulk loads run on the driver's own cursor
            raise StoreError(f"online store at {self.where}: {exc}") from exc
        return Materialization(
            as_of, spec_hash, {k: _TYPES[v][0] for k, v in dtypes.items()}, total, written_at
        )

    def _check_keys(self, data: pl.DataFrame) -> None:
        if self.key not in data.columns:
            raise InputError(f"materialize: the frame has no {self.key!r} column")
        if data[self.key].is_null().any() or data[self.key].is_duplicated().any():
            raise InputError(f"materialize: {self.key} is not unique and non-null in the frame")

    def _check_same_columns(self, part: pl.DataFrame, first: pl.DataFrame) -> None:
        if part.schema != first.schema:
            raise InputError(
                "materialize: the parts differ in columns or types "
                f"({dict(part.schema)} against {dict(first.schema)})"
            )

    def _load(self, conn: sa.Connection, table: sa.Table, rows: pl.DataFrame) -> None:
        if self.dialect == "postgresql":
            self._copy(conn, table, rows)
        elif self.dialect == "sqlite":
            self._executemany(conn, table, rows)
        elif rows.height:
            conn.execute(sa.insert(table), rows.to_dicts())

    def erase(self, ids: Sequence[str]) -> int:
        """Delete the vectors of ``ids`` (erasure); returns how many were deleted.

        Records a new materialisation (same as-of and spec, fewer rows, written now) in the
        same transaction, so that every score book built on the old one is dropped and rebuilt
        without them (`serving.bookkeeper`): its cached explanations go with it."""
        current = self.current()
        wanted = sorted({str(i) for i in ids})
        if current is None or not wanted:
            return 0
        names = {f: _dtype_name(f, t) for f, t in current.features.items()}
        v = self._vectors(VECTORS, names)
        try:
            with self.engine.begin() as conn:
                deleted = int(conn.execute(sa.delete(v).where(v.c[self.key].in_(wanted))).rowcount)
                conn.execute(
                    sa.insert(self.materializations).values(
                        as_of=current.as_of,
                        spec_hash=current.spec_hash,
                        features=json.dumps(names),
                        rows=max(0, current.rows - deleted),
                        written_at=max(datetime.now(UTC), current.written_at + _TICK),
                    )
                )
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"online store at {self.where}: {exc}") from exc
        return deleted

    def _copy(self, conn: sa.Connection, table: sa.Table, rows: pl.DataFrame) -> None:
        """PostgreSQL COPY in the caller's transaction, streamed as CSV from Polars."""
        raw: Any = conn.connection.driver_connection
        target = self.engine.dialect.identifier_preparer.format_table(table)
        columns = ", ".join(_quoted(c) for c in rows.columns)
        buffer = io.BytesIO()
        rows.write_csv(
            buffer, include_header=False, datetime_format="%Y-%m-%dT%H:%M:%S%.fZ", null_value=""
        )
        view = buffer.getbuffer()
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {target} ({columns}) FROM STDIN WITH (FORMAT csv)") as copy,
        ):
            step = 1 << 20
            for start in range(0, len(view), step):
                copy.write(view[start : start + step])

    def _executemany(self, conn: sa.Connection, table: sa.Table, rows: pl.DataFrame) -> None:
        """SQLite: one ``executemany`` of plain tuples on the driver's cursor (in the caller's
        transaction), dates written in SQLAlchemy's own SQLite storage format."""
        raw: Any = conn.connection.driver_connection
        target = self.engine.dialect.identifier_preparer.format_table(table)
        columns = ", ".join(_quoted(c) for c in rows.columns)
        marks = ", ".join("?" for _ in rows.columns)
        text = rows.with_columns(
            pl.col(pl.Date).dt.strftime("%Y-%m-%d"),
            pl.col("written_at").dt.strftime("%Y-%m-%d %H:%M:%S.%6f"),
        )
        cursor = raw.cursor()
        try:
            cursor.executemany(
                f"INSERT INTO {target} ({columns}) VALUES ({marks})", text.iter_rows()
            )
        finally:
            cursor.close()

    # ---- reading -----------------------------------------------------------------------------
    def current(self) -> Materialization | None:
        m = self.materializations
        query = sa.select(m).order_by(m.c.id.desc()).limit(1)
        try:
            with self.engine.connect() as conn:
                row = conn.execute(query).mappings().first()
        except (sa.exc.OperationalError, sa.exc.ProgrammingError):
            return None  # not created yet (no such table)
        if row is None:
            return None
        names: dict[str, str] = json.loads(row["features"])
        return Materialization(
            as_of=row["as_of"],
            spec_hash=row["spec_hash"],
            features={k: _TYPES[v][0] for k, v in names.items()},
            rows=row["rows"],
            written_at=_utc(row["written_at"]),
        )

    def get_vectors(self, ids: Sequence[str]) -> pl.DataFrame:
        current = self.current()
        return self._read(current, list(current.features) if current else [], ids)

    def get_columns(self, columns: Sequence[str], ids: Sequence[str] | None = None) -> pl.DataFrame:
        current = self.current()
        held = current.features if current else {}
        return self._read(current, [c for c in dict.fromkeys(columns) if c in held], ids)

    def _read(
        self, current: Materialization | None, wanted: list[str], ids: Sequence[str] | None
    ) -> pl.DataFrame:
        """Key, meta and ``wanted`` features, fetched ``FETCH_ROWS`` rows at a time into
        Polars (a nation's rows never sit in memory as Python tuples all at once)."""
        features = {f: current.features[f] for f in wanted} if current else {}
        schema: dict[str, pl.DataType] = {
            self.key: pl.String(),
            "as_of": pl.Date(),
            "spec_hash": pl.String(),
            "written_at": pl.Datetime("us", "UTC"),
            **features,
        }
        asked = None if ids is None else list(dict.fromkeys(ids))
        if current is None or asked == []:
            return pl.DataFrame(schema=schema)
        v = self._vectors(VECTORS, {f: _dtype_name(f, t) for f, t in current.features.items()})
        query = sa.select(*(v.c[c] for c in schema))
        params: dict[str, Any] = {}
        if asked is not None and self.dialect == "postgresql":
            param = sa.bindparam("ids", type_=postgresql.ARRAY(sa.String))
            query = query.where(v.c[self.key] == sa.any_(param))
            params = {"ids": asked}
        elif asked is not None:  # one bound JSON array: no limit on the number of ids
            listed = sa.func.json_each(sa.bindparam("ids")).table_valued("value")
            query = query.where(v.c[self.key].in_(sa.select(listed.c.value)))
            params = {"ids": json.dumps(asked)}
        parts = [pl.DataFrame(schema=schema)]
        try:
            with self.engine.connect() as conn:
                result = conn.execution_options(yield_per=FETCH_ROWS).execute(query, params)
                for part in result.partitions():
                    parts.append(
                        pl.DataFrame([tuple(r) for r in part], schema=schema, orient="row")
                    )
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"online store at {self.where}: {exc}") from exc
        found = pl.concat(parts, rechunk=True)
        if asked is None:
            return found
        order = pl.DataFrame({self.key: asked}, schema={self.key: pl.String()})
        return order.join(found, on=self.key, how="inner", maintain_order="left")


def _load_errors() -> tuple[type[Exception], ...]:
    """SQLAlchemy's errors and the drivers' own (COPY and executemany run on the driver's
    cursor, which SQLAlchemy does not wrap): e.g. a key repeated across the parts."""
    errors: list[type[Exception]] = [sa.exc.SQLAlchemyError, sqlite3.Error]
    try:
        import psycopg
    except ImportError:  # pragma: no cover - PostgreSQL's driver is a dependency
        return tuple(errors)
    return (*errors, psycopg.Error)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _dtype_name(column: str, dtype: pl.DataType) -> str:
    for name, (known, _) in _TYPES.items():
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
