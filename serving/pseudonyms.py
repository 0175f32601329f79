"""Keyed pseudonyms of persons in the access log, and the one table that resolves them.

Why: the access log is append-only and hash-chained, so a person's id written in it could never
be erased without breaking the chain. Every entry therefore stores a keyed pseudonym
(HMAC-SHA256 under ``RISKCAST_PSEUDONYM_KEY``, see `riskcast.chain.settings`) instead of the
id, and the table ``access_log_persons`` maps each pseudonym back to its id. Erasure deletes
the person's row there: the chain still verifies (nothing hashed changed), and every reader
that shows the log shows ``erased`` in place of that person from then on.

Values not of the pseudonym form (``psn:`` and 32 hex digits) are ids written before
pseudonyms existed; they are shown as they are.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Collection, Iterable, Mapping

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from riskcast.db import IMMEDIATE

PREFIX = "psn:"
ERASED = "erased"
"""What a reader shows for a pseudonym whose person was erased (its lookup row deleted)."""
_FORM = re.compile(r"^psn:[0-9a-f]{32}$")
_CHUNK = 500

persons_table = sa.Table(
    "access_log_persons",
    sa.MetaData(),
    sa.Column("pseudonym", sa.String(40), primary_key=True),
    sa.Column("person_id", sa.String(128), nullable=False),
)
erased_table = sa.Table(
    "access_log_erased",
    sa.MetaData(),
    sa.Column("pseudonym", sa.String(40), primary_key=True),
)
"""Pseudonyms of erased persons (no ids): a later read of an erased id is logged under its
pseudonym but never makes it resolvable again."""


def pseudonym(person_id: str, key: bytes) -> str:
    """The keyed pseudonym of ``person_id`` (128 bits of its HMAC-SHA256 under ``key``)."""
    digest = hmac.new(key, str(person_id).encode("utf-8"), hashlib.sha256).hexdigest()
    return PREFIX + digest[:32]


def is_pseudonym(value: str) -> bool:
    return bool(_FORM.match(value))


class PseudonymTable:
    """The lookup table of one database (``schema`` on PostgreSQL), beside the access log."""

    def __init__(self, engine: sa.Engine, schema: str | None, key: bytes) -> None:
        self.engine, self.key = engine, key
        metadata = sa.MetaData(schema=schema)
        self.table = persons_table.to_metadata(metadata)
        self.erased = erased_table.to_metadata(metadata)
        self._ready = False

    def of(self, person_id: str) -> str:
        return pseudonym(person_id, self.key)

    @property
    def ready(self) -> bool:
        return self._ready

    def ensure(self, conn: sa.Connection | None = None) -> None:
        if self._ready:
            return
        if conn is None:  # BEGIN IMMEDIATE on SQLite: never a lock upgrade between writers
            immediate = self.engine.connect().execution_options(**{IMMEDIATE: True})
            with immediate as own, own.begin():
                self.ensure(own)
            return
        self.table.create(conn, checkfirst=True)
        self.erased.create(conn, checkfirst=True)
        self._ready = True

    def record(self, conn: sa.Connection, mapping: Mapping[str, str]) -> None:
        """Insert the (pseudonym -> id) rows not there yet, on ``conn`` (the log entry's
        transaction, so an entry is never committed without the rows that resolve it)."""
        if not mapping:
            return
        e = self.erased
        gone = set(
            conn.execute(sa.select(e.c.pseudonym).where(e.c.pseudonym.in_(list(mapping)))).scalars()
        )
        rows = [{"pseudonym": p, "person_id": i} for p, i in mapping.items() if p not in gone]
        if not rows:
            return
        dialect = conn.dialect.name
        if dialect == "postgresql":
            stmt: sa.Insert = postgresql.insert(self.table).on_conflict_do_nothing()
        elif dialect == "sqlite":
            stmt = sqlite.insert(self.table).on_conflict_do_nothing()
        else:  # pragma: no cover - the service runs on SQLite or PostgreSQL only
            stmt = sa.insert(self.table)
        conn.execute(stmt, rows)

    def resolve(self, pseudonyms: Iterable[str]) -> dict[str, str]:
        """pseudonym -> person id for those still resolvable (erased ones are absent)."""
        wanted = sorted({p for p in pseudonyms if is_pseudonym(p)})
        found: dict[str, str] = {}
        if not wanted:
            return found
        self.ensure()
        t = self.table
        with self.engine.connect() as conn:
            for i in range(0, len(wanted), _CHUNK):
                part = wanted[i : i + _CHUNK]
                query = sa.select(t.c.pseudonym, t.c.person_id).where(t.c.pseudonym.in_(part))
                found.update({str(p): str(pid) for p, pid in conn.execute(query).all()})
        return found

    def forget(self, conn: sa.Connection, person_id: str) -> int:
        """Delete the person's row and mark the pseudonym erased (so that no later read of the
        id brings the row back); the number of lookup rows deleted (0 or 1)."""
        self.ensure(conn)
        t, e, name = self.table, self.erased, self.of(person_id)
        done = conn.execute(sa.delete(t).where(t.c.pseudonym == name))
        if conn.execute(sa.select(e.c.pseudonym).where(e.c.pseudonym == name)).first() is None:
            conn.execute(sa.insert(e).values(pseudonym=name))
        return int(done.rowcount or 0)


def shown(values: Collection[str], resolved: Mapping[str, str]) -> list[str]:
    """Stored values as a reader shows them: the id, ``erased``, or a pre-pseudonym id."""
    return [resolved.get(v, ERASED) if is_pseudonym(v) else v for v in values]
