"""The service's SQL tables (SQLAlchemy Core): users, decisions and the stop switch.

SQLite under ``RISKCAST_HOME`` by default, PostgreSQL with ``RISKCAST_DATABASE_URL``.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from riskcast.clock import as_utc, utcnow
from riskcast.db import make_engine, masked
from riskcast.errors import StoreError

metadata = sa.MetaData()


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (UTC).

    PostgreSQL keeps the offset (``timestamptz``); SQLite keeps none, and a naive datetime would
    reach the API without one (not an RFC 3339 ``date-time``). Naive values are taken as UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return as_utc(value)


users = sa.Table(
    "service_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("regions", sa.Text, nullable=False),  # JSON list
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("revoked_at", UtcDateTime(), nullable=True),
)

decisions = sa.Table(
    "service_decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("recorded_at", UtcDateTime(), nullable=False),
    sa.Column("officer", sa.String(100), nullable=False),
    sa.Column("person_id", sa.String(64), nullable=False, index=True),
    sa.Column("region", sa.String(64), nullable=False),
    sa.Column("district", sa.String(64), nullable=True),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("measure_id", sa.String(64), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("override", sa.Boolean, nullable=False),
    sa.Column("model_version", sa.String(32), nullable=True),
    sa.Column("probability", sa.Float, nullable=True),
    sa.Column("tier", sa.String(32), nullable=True),
)

service_state = sa.Table(
    "service_state",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("changed_by", sa.String(100), nullable=False),
    sa.Column("changed_at", UtcDateTime(), nullable=False),
)

STOP_KEY = "stopped"
_STOP_QUERY = sa.select(service_state).where(service_state.c.key == STOP_KEY)  # built once


def open_engine(url: str) -> sa.Engine:
    """An engine (`riskcast.db.make_engine`: the SQLite rules every store on the file shares)
    with the service tables created (idempotent)."""
    engine = make_engine(url, what="service database")
    try:
        metadata.create_all(engine)
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"service database at {masked(engine.url)}: {exc}") from exc
    return engine


def stop_reason(engine: sa.Engine) -> str | None:
    """The stop switch: the reason it was turned on, or None when serving is allowed."""
    with engine.connect() as conn:
        row = conn.execute(_STOP_QUERY).mappings().first()
    if row is None:
        return None
    return f"{row['value']} (stopped by {row['changed_by']} at {row['changed_at']})"


def set_stop(engine: sa.Engine, *, stopped: bool, by: str, reason: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.delete(service_state).where(service_state.c.key == STOP_KEY))
        if stopped:
            conn.execute(
                sa.insert(service_state).values(
                    key=STOP_KEY, value=reason, changed_by=by, changed_at=utcnow()
                )
            )
