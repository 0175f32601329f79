"""An append-only, hash-chained table: the mechanism shared by the ledger and the access log.

SQLAlchemy Core on SQLite or PostgreSQL (``schema`` isolates it there). A `HashChain` owns one
table: ``seq`` (primary key, from 1 without gaps), ``at`` (UTC, never going backwards), the
caller's payload columns, ``prev_hash`` (unique) and ``hash`` (unique):

- ``hash`` is the sha256 of the canonical JSON (sorted keys, no spaces, UTF-8, ``at`` as
  ``YYYY-MM-DDTHH:MM:SS.ffffffZ``) of every other field, ``prev_hash`` included; ``prev_hash``
  is the previous entry's ``hash`` (64 zeros for the first), so editing, deleting or reordering
  an entry breaks the chain. Columns typed `JsonText` hold JSON and are hashed decoded;
- appends are serialised: one transaction holding a lock (``BEGIN IMMEDIATE`` on SQLite, a
  transaction-scoped advisory lock keyed by schema and table on PostgreSQL) reads the head and
  writes the next entry; the primary key on ``seq`` and the unique ``prev_hash`` make a fork
  impossible even without it;
- triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) and are re-created when a
  chain is opened; `HashChain.verify` recomputes the whole chain, so tampering by someone who
  dropped the triggers is still found, and names the seq and the problem.

Entries are frozen pydantic models whose fields are exactly the table's columns.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from features.errors import InputError, StoreError

GENESIS = "0" * 64
CHAIN_COLUMNS = ("seq", "at", "prev_hash", "hash")

E = TypeVar("E", bound=BaseModel)


class JsonText(sa.Text):
    """A TEXT column holding JSON: the chain encodes it on append (sorted keys) and decodes it
    on read; hashes cover the decoded value, not the stored text."""

    cache_ok = True


class ChainVerification(BaseModel):
    """The result of `HashChain.verify`: ``ok`` iff ``problems`` is empty."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    entries: int
    head: str | None = None
    problems: list[str] = Field(default_factory=list)


def canonical_json(fields: Mapping[str, Any]) -> bytes:
    """The hashed form of an entry: every field but ``hash``, sorted keys, times in ISO UTC."""
    content = {k: v for k, v in fields.items() if k != "hash"}
    at = content["at"]
    if isinstance(at, datetime):
        content["at"] = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(fields)).hexdigest()


def masked(url: str) -> str:
    """A database URL with its password replaced by ``***`` (for messages)."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def utc(value: datetime) -> datetime:
    """A stored time as aware UTC (SQLite returns naive UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class HashChain(Generic[E]):
    """One hash-chained, append-only table of ``model`` entries.

    ``columns`` maps each payload column to its SQLAlchemy type (`JsonText` for JSON values);
    ``nullable`` names the payload columns that may be NULL, ``indexed`` those worth an index.
    ``label`` names the chain in messages ("ledger"), ``command`` the CLI group that verifies it.
    """

    def __init__(
        self,
        url: str,
        *,
        table: str,
        columns: Mapping[str, sa.types.TypeEngine[Any] | type[sa.types.TypeEngine[Any]]],
        model: type[E],
        schema: str | None = None,
        nullable: Collection[str] = (),
        indexed: Collection[str] = (),
        label: str | None = None,
        command: str | None = None,
    ) -> None:
        reserved = set(CHAIN_COLUMNS) & set(columns)
        if reserved:
            raise ValueError(f"payload columns {sorted(reserved)} are the chain's own")
        expected = {*CHAIN_COLUMNS, *columns}
        if set(model.model_fields) != expected:
            raise ValueError(f"{model.__name__} fields must be exactly {sorted(expected)}")
        self.model = model
        self.schema = schema
        self.name = table
        self.label = label or table
        self.command = command or table
        self.payload = tuple(columns)
        self.json_columns = frozenset(
            name
            for name, kind in columns.items()
            if isinstance(kind, JsonText) or (isinstance(kind, type) and issubclass(kind, JsonText))
        )
        try:
            self.engine = sa.create_engine(url)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise StoreError(
                f"cannot use the {self.label} URL {masked(url)!r} (RISKCAST_DATABASE_URL): {exc}"
            ) from exc
        self.dialect = self.engine.dialect.name
        if schema is not None and self.dialect != "postgresql":
            raise InputError(f"schema {schema!r}: only a PostgreSQL {self.label} takes a schema")
        if self.dialect == "sqlite":
            sqlite_transactions(self.engine)
        self.table = sa.Table(
            table,
            sa.MetaData(schema=schema),
            sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False, index="at" in indexed),
            *(
                sa.Column(name, kind, nullable=name in nullable, index=name in indexed)
                for name, kind in columns.items()
            ),
            sa.Column("prev_hash", sa.String(64), nullable=False, unique=True),
            sa.Column("hash", sa.String(64), nullable=False, unique=True),
        )
        self.append_only = f"the {self.label} is append-only"
        # statements built once: building one costs more than running it
        self._head = (
            sa.select(self.table.c.seq, self.table.c.at, self.table.c.hash)
            .order_by(self.table.c.seq.desc())
            .limit(1)
        )
        self._insert = sa.insert(self.table)
        self._ready = False

    @property
    def where(self) -> str:
        """The database URL without its password (for messages)."""
        return self.engine.url.render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()

    # ---- set-up ------------------------------------------------------------------------------
    def lock(self, conn: sa.Connection) -> None:
        """Take the writers' lock in ``conn``'s transaction (SQLite: BEGIN IMMEDIATE did)."""
        if self.dialect == "postgresql":
            name = f"riskcast.{self.schema or 'public'}.{self.name}".encode()
            key = int.from_bytes(hashlib.sha256(name).digest()[:8], "big", signed=True)
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    def writing(self) -> sa.Connection:
        """A connection whose transactions take the writers' lock from their start on SQLite."""
        conn = self.engine.connect()
        return conn.execution_options(riskcast_immediate=True)

    def ensure(self) -> None:
        """Create the table and its append-only triggers if missing (once per instance)."""
        if self._ready:
            return
        try:
            with self.writing() as conn, conn.begin():
                self.lock(conn)
                self.table.create(conn, checkfirst=True)
                for statement in self._trigger_ddl(conn):
                    conn.execute(sa.text(statement))
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"{self.label} at {self.where}: cannot create it: {exc}") from exc
        self._ready = True

    def _trigger_ddl(self, conn: sa.Connection) -> list[str]:
        quote = self.engine.dialect.identifier_preparer
        target = quote.format_table(self.table)
        if self.dialect == "sqlite":
            return [
                f"CREATE TRIGGER IF NOT EXISTS {self.name}_no_{op.lower()} BEFORE {op} "
                f"ON {target} BEGIN SELECT RAISE(ABORT, '{self.append_only}'); END"
                for op in ("UPDATE", "DELETE")
            ]
        if self.dialect != "postgresql":
            return []
        prefix = f"{quote.quote_schema(self.schema)}." if self.schema else ""
        function = f"{prefix}{self.name}_append_only"
        statements = [
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{self.append_only}: % refused', TG_OP; END $$"
        ]
        existing = set(
            conn.execute(
                sa.text("SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass(:t)"),
                {"t": target},
            ).scalars()
        )
        for name, when in (
            (f"{self.name}_no_change", "BEFORE UPDATE OR DELETE ON {t} FOR EACH ROW"),
            (f"{self.name}_no_truncate", "BEFORE TRUNCATE ON {t} FOR EACH STATEMENT"),
        ):
            if name not in existing:
                statements.append(
                    f"CREATE TRIGGER {name} {when.format(t=target)} EXECUTE FUNCTION {function}()"
                )
        return statements

    # ---- writing -----------------------------------------------------------------------------
    def append(self, payload: Mapping[str, Any]) -> E:
        """Append one entry after the current head, in one locked transaction; returns it.

        ``payload`` holds every payload column; an entry the model refuses raises `InputError`
        and writes nothing."""
        return self.append_many([payload])[0]

    def append_many(self, payloads: Sequence[Mapping[str, Any]]) -> list[E]:
        """Append entries in order, in one locked transaction (one commit, one fsync): all are
        written or none. Group commit for busy writers; each entry is chained as if alone."""
        for payload in payloads:
            if set(payload) != set(self.payload):
                raise InputError(
                    f"{self.label} entry: fields must be exactly {', '.join(self.payload)}"
                )
        if not payloads:
            return []
        self.ensure()
        entries: list[E] = []
        try:
            with self.writing() as conn, conn.begin():
                self.lock(conn)
                head = conn.execute(self._head).first()
                seq, prev_hash = (0, GENESIS) if head is None else (head.seq, head.hash)
                last_at = None if head is None else utc(head.at)
                for payload in payloads:
                    now = datetime.now(UTC)
                    fields: dict[str, Any] = {
                        "seq": seq + 1,
                        "at": now if last_at is None else max(now, last_at),  # never backwards
                        **payload,
                        "prev_hash": prev_hash,
                    }
                    checked = self.validate(fields | {"hash": GENESIS}).model_dump()
                    entry = self.model.model_construct(**(checked | {"hash": entry_hash(checked)}))
                    entries.append(entry)
                    seq, prev_hash, last_at = seq + 1, entry.hash, checked["at"]  # type: ignore[attr-defined]
                conn.execute(self._insert, [self._row(e) for e in entries])
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"{self.label} at {self.where}: cannot append: {exc}") from exc
        return entries

    def validate(self, fields: Mapping[str, Any]) -> E:
        """``fields`` as an entry; `InputError` naming each refused field."""
        try:
            return self.model.model_validate(fields)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise InputError(f"{self.label} entry: {problems}") from exc

    def _row(self, entry: E) -> dict[str, Any]:
        row = entry.model_dump()
        for name in self.json_columns:
            if row[name] is not None:
                row[name] = json.dumps(row[name], sort_keys=True, ensure_ascii=False)
        return row

    # ---- reading -----------------------------------------------------------------------------
    def rows(self, query: sa.Select[Any]) -> list[sa.Row[Any]]:
        """Run a query on the chain's table (created if missing); `StoreError` on failure."""
        self.ensure()
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(query).all())
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"{self.label} at {self.where}: {exc}") from exc

    def fields(self, row: sa.Row[Any]) -> dict[str, Any]:
        """A stored row as entry fields (JSON columns decoded, time in UTC)."""
        fields = dict(row._mapping)
        fields["at"] = utc(fields["at"])
        for name in self.json_columns:
            if fields[name] is not None:
                fields[name] = json.loads(fields[name])
        return fields

    def read(self, row: sa.Row[Any]) -> E:
        """A stored row as an entry; `StoreError` pointing at verify if it is unreadable."""
        try:
            return self.validate(self.fields(row))
        except (InputError, ValueError, TypeError) as exc:
            raise StoreError(
                f"{self.label} at {self.where}: seq {row.seq} is unreadable ({exc}); "
                f"run `riskcast {self.command} verify`"
            ) from exc

    def entries(self, query: sa.Select[Any]) -> list[E]:
        """The entries ``query`` (a select of the whole table row) returns, in its order."""
        return [self.read(row) for row in self.rows(query)]

    def verify(self, *, head: str | None = None) -> ChainVerification:
        """Recompute every hash and link; each problem names the seq and what is wrong
        (content edited, missing i.e. deleted, chain broken, reordered).

        Removing the newest entries leaves a valid (shorter) chain: pass a ``head`` recorded
        earlier (e.g. printed by a previous verify) to check that it is still in the chain."""
        rows = self.rows(sa.select(self.table).order_by(self.table.c.seq))
        problems: list[str] = []
        by_hash = {row.hash: row.seq for row in rows}
        expected_seq, prev_hash, prev_at = 1, GENESIS, None
        for row in rows:
            seq = row.seq
            if seq > expected_seq:
                gone = str(expected_seq) if seq == expected_seq + 1 else f"{expected_seq}-{seq - 1}"
                problems.append(f"seq {gone}: missing (deleted entry; seq jumps to {seq})")
            try:
                computed = entry_hash(self.fields(row))
            except (ValueError, TypeError) as exc:
                problems.append(f"seq {seq}: content edited (unreadable: {exc})")
            else:
                if computed != row.hash:
                    problems.append(
                        f"seq {seq}: content edited (stored hash {row.hash[:12]}…, "
                        f"content hashes to {computed[:12]}…)"
                    )
            if row.prev_hash != prev_hash:
                before = "genesis" if prev_at is None else f"seq {expected_seq - 1}"
                other = by_hash.get(row.prev_hash)
                if other is not None:
                    problems.append(
                        f"seq {seq}: reordered (chained after seq {other}, not {before})"
                    )
                else:
                    problems.append(
                        f"seq {seq}: chain broken (prev_hash {row.prev_hash[:12]}… is not the "
                        f"hash of {before})"
                    )
            at = utc(row.at)
            if prev_at is not None and at < prev_at:
                problems.append(f"seq {seq}: reordered (recorded before the entry preceding it)")
            expected_seq, prev_hash, prev_at = seq + 1, row.hash, at
        if head is not None and head not in by_hash:
            problems.append(
                f"head {head[:12]}… recorded earlier is not in the {self.label} "
                "(entries deleted from the end, or edited)"
            )
        newest = rows[-1].hash if rows else None
        return ChainVerification(ok=not problems, entries=len(rows), head=newest, problems=problems)


def sqlite_transactions(engine: sa.Engine) -> None:
    """SQLAlchemy, not the sqlite3 module, opens transactions (SQLAlchemy's documented recipe);
    writers open theirs with BEGIN IMMEDIATE so a second writer waits for the first."""

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA busy_timeout = 30000")
        _wal(dbapi_connection)

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        immediate = connection.get_execution_options().get("riskcast_immediate", False)
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


class ChainBacked:
    """Plumbing shared by typed logs built on one `HashChain` (the ledger, the access log)."""

    chain: HashChain[Any]
    schema: str | None

    @property
    def engine(self) -> sa.Engine:
        return self.chain.engine

    @property
    def dialect(self) -> str:
        return self.chain.dialect

    @property
    def table(self) -> sa.Table:
        return self.chain.table

    @property
    def where(self) -> str:
        """The database URL without its password (for messages)."""
        return self.chain.where

    def dispose(self) -> None:
        self.chain.dispose()
