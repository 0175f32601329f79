"""One way to open a database engine, so every store on the same file behaves the same.

The online store, the hash chains (access log, ledger) and the service's tables share one
database (``RISKCAST_DATABASE_URL``, else ``RISKCAST_HOME/riskcast.sqlite``). On SQLite the
choices are made here, once:

- SQLAlchemy, not the sqlite3 module, opens transactions (SQLAlchemy's documented recipe), so
  DDL such as the online store's table swap is inside its transaction; a connection with the
  execution option ``riskcast_immediate=True`` begins with ``BEGIN IMMEDIATE`` (the chains'
  writers: a second writer waits for the first instead of failing at its first write);
- ``busy_timeout`` 30 s: a writer waits for another instead of failing at once;
- WAL: readers go on while a writer writes (the switch is retried, see `_wal`);
- ``synchronous``: FULL (every commit durable) unless the data is ``rebuildable`` (the online
  store, re-materialised from the offline store), where NORMAL is consistent and cheaper.

`masked` is the one way a URL is put into a message: without its password. `url_hint` names
the URL to write instead of a common wrong one (``postgres://``), `reach` turns an unreachable
database into one line.
"""

from __future__ import annotations

import re
import sqlite3
import time
from typing import Any

import sqlalchemy as sa

from riskcast.errors import StoreError

BUSY_TIMEOUT_MS = 30_000
IMMEDIATE = "riskcast_immediate"
"""The execution option that makes a connection's transactions BEGIN IMMEDIATE on SQLite."""


def masked(url: str | sa.URL) -> str:
    """A database URL with its password replaced by ``***`` (for messages and logs); also for
    strings SQLAlchemy cannot parse, so a refused URL is never echoed with its password."""
    if isinstance(url, sa.URL):
        return url.render_as_string(hide_password=True)
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def url_hint(url: str) -> str:
    """A hint (starting with "; ") for the PostgreSQL URL SQLAlchemy cannot open as written,
    ``postgres://...`` (Heroku's and libpq's spelling; SQLAlchemy has no such dialect): the same
    URL as ``postgresql+psycopg://...`` (psycopg 3, riskcast's driver). Empty otherwise."""
    if not url.startswith("postgres://"):
        return ""
    fixed = "postgresql+psycopg://" + url.removeprefix("postgres://")
    return f"; write {masked(fixed)!r} (psycopg 3, riskcast's PostgreSQL driver)"


def first_line(exc: BaseException) -> str:
    """The first line of a database error's own message (without SQLAlchemy's background link
    and the driver's multi-line details)."""
    cause = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return lines[0] if lines else type(cause).__name__


def reach(engine: sa.Engine, *, what: str = "database") -> None:
    """Connect once; an unreachable database (server down, wrong host, port, name or user) is a
    `StoreError` of one line naming ``what`` and the masked URL, instead of a traceback."""
    try:
        with engine.connect():
            pass
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(
            f"cannot reach the {what} at {masked(engine.url)}: "
            f"{_without(first_line(exc), str(engine.url))}"
        ) from exc


def make_engine(url: str, *, what: str = "database", rebuildable: bool = False) -> sa.Engine:
    """An engine for ``url`` with riskcast's SQLite rules (see the module); other dialects as
    SQLAlchemy makes them. A URL SQLAlchemy cannot use is a `StoreError` naming ``what`` and
    ``RISKCAST_DATABASE_URL``, with the password masked and, for ``postgres://``, the URL to
    write instead (`url_hint`)."""
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # the service hands connections between threads; SQLAlchemy's pool keeps them apart
        kwargs["connect_args"] = {"check_same_thread": False}
    try:
        engine = sa.create_engine(url, **kwargs)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise StoreError(
            f"cannot use the {what} URL {masked(url)!r} (RISKCAST_DATABASE_URL): "
            f"{_without(str(exc), url)}{url_hint(url)}"
        ) from exc
    if engine.dialect.name == "sqlite":
        sqlite_rules(engine, synchronous="NORMAL" if rebuildable else "FULL")
    return engine


def sqlite_rules(engine: sa.Engine, *, synchronous: str = "FULL") -> None:
    """Install the connect and begin hooks on a SQLite ``engine`` (see the module)."""

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _wal(dbapi_connection)
        dbapi_connection.execute(f"PRAGMA synchronous = {synchronous}")

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        immediate = connection.get_execution_options().get(IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _wal(dbapi_connection: Any, wait: float = 30.0) -> None:
    """Switch to WAL. Connections opened at once on a new file can get "database is locked"
    here at once (the switch does not wait on the busy timeout), so retry for up to ``wait``."""
    deadline = time.monotonic() + wait
    while True:
        try:
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _without(text: str, url: str) -> str:
    """``text`` (an error message that may quote ``url``) with the URL masked."""
    return text.replace(url, masked(url)) if url else text
