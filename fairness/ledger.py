"""The promotion ledger: an append-only, hash-chained record of audits and promotion decisions.

SQLAlchemy Core on SQLite (the embedded default, ``riskcast.sqlite`` under ``RISKCAST_HOME``)
or PostgreSQL (``RISKCAST_DATABASE_URL``; ``schema`` isolates it). One table,
``ledger_entries``, one row per entry:

- ``hash`` is the sha256 of the canonical JSON (sorted keys, no spaces, UTF-8) of every other
  field, ``prev_hash`` included; ``prev_hash`` is the previous entry's ``hash`` (64 zeros for
  the first entry), so editing, deleting or reordering an entry breaks the chain;
- appends are serialised: one transaction holding a lock (``BEGIN IMMEDIATE`` on SQLite, a
  transaction-scoped advisory lock on PostgreSQL) reads the head and writes the next entry; the
  primary key on ``seq`` and a unique ``prev_hash`` make a fork impossible even without it;
- triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL), and `verify` recomputes the
  whole chain, so tampering by someone who dropped the triggers is still found.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any, Literal, get_args

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from features.errors import InputError, StoreError
from features.settings import Settings, get_settings

TABLE = "ledger_entries"
GENESIS = "0" * 64
Kind = Literal["audit", "promotion", "refusal", "override", "rollback"]
KINDS: tuple[str, ...] = get_args(Kind)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_APPEND_ONLY = "the ledger is append-only"


class LedgerEntry(BaseModel):
    """One ledger entry: who decided what about which version, when and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int = Field(ge=1)
    at: datetime
    kind: Kind
    actor: str = Field(min_length=1)
    role: str = Field(min_length=1)
    version: str = Field(min_length=1)
    decision: str = Field(min_length=1)
    reasons: list[str]
    report_sha256: str | None = None
    data_digests: dict[str, str] = Field(default_factory=dict)
    prev_hash: str
    hash: str

    @field_validator("at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must be timezone-aware (UTC)")
        return value.astimezone(UTC)

    @field_validator("report_sha256")
    @classmethod
    def _sha256(cls, value: str | None) -> str | None:
        if value is not None and not _SHA256.match(value):
            raise ValueError("must be 64 lowercase hex digits")
        return value


class LedgerVerification(BaseModel):
    """The result of `Ledger.verify`: ``ok`` iff ``problems`` is empty."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    entries: int
    head: str | None = None
    problems: list[str] = Field(default_factory=list)


def canonical_json(fields: dict[str, Any]) -> bytes:
    """The hashed form of an entry: every field but ``hash``, sorted keys, times in ISO UTC."""
    content = {k: v for k, v in fields.items() if k != "hash"}
    at = content["at"]
    if isinstance(at, datetime):
        content["at"] = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(fields: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(fields)).hexdigest()


class Ledger:
    """The ledger on SQLite or PostgreSQL; ``schema`` isolates it (PostgreSQL only)."""

    def __init__(self, url: str, *, schema: str | None = None) -> None:
        self.schema = schema
        try:
            self.engine = sa.create_engine(url)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise StoreError(
                f"cannot use the ledger URL {_masked(url)!r} (RISKCAST_DATABASE_URL): {exc}"
            ) from exc
        self.dialect = self.engine.dialect.name
        if schema is not None and self.dialect != "postgresql":
            raise InputError(f"schema {schema!r}: only a PostgreSQL ledger takes a schema")
        if self.dialect == "sqlite":
            _sqlite_transactions(self.engine)
        self.table = sa.Table(
            TABLE,
            sa.MetaData(schema=schema),
            sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("actor", sa.Text, nullable=False),
            sa.Column("role", sa.Text, nullable=False),
            sa.Column("version", sa.Text, nullable=False),
            sa.Column("decision", sa.Text, nullable=False),
            sa.Column("reasons", sa.Text, nullable=False),
            sa.Column("report_sha256", sa.String(64), nullable=True),
            sa.Column("data_digests", sa.Text, nullable=False),
            sa.Column("prev_hash", sa.String(64), nullable=False, unique=True),
            sa.Column("hash", sa.String(64), nullable=False, unique=True),
        )
        self._ready = False

    @property
    def where(self) -> str:
        """The database URL without its password (for messages)."""
        return self.engine.url.render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()

    # ---- set-up ------------------------------------------------------------------------------
    def _locked(self, conn: sa.Connection) -> None:
        """Take the writers' lock in ``conn``'s transaction (SQLite: BEGIN IMMEDIATE did)."""
        if self.dialect == "postgresql":
            name = f"riskcast.{self.schema or 'public'}.{TABLE}".encode()
            key = int.from_bytes(hashlib.sha256(name).digest()[:8], "big", signed=True)
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    def _writing(self) -> sa.Connection:
        conn = self.engine.connect()
        return conn.execution_options(riskcast_immediate=True)

    def _ensure(self) -> None:
        """Create the table and its append-only triggers if missing (once per instance)."""
        if self._ready:
            return
        try:
            with self._writing() as conn, conn.begin():
                self._locked(conn)
                self.table.create(conn, checkfirst=True)
                for statement in self._trigger_ddl(conn):
                    conn.execute(sa.text(statement))
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"ledger at {self.where}: cannot create it: {exc}") from exc
        self._ready = True

    def _trigger_ddl(self, conn: sa.Connection) -> list[str]:
        quote = self.engine.dialect.identifier_preparer
        target = quote.format_table(self.table)
        if self.dialect == "sqlite":
            return [
                f"CREATE TRIGGER IF NOT EXISTS {TABLE}_no_{op.lower()} BEFORE {op} ON {target} "
                f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END"
                for op in ("UPDATE", "DELETE")
            ]
        if self.dialect != "postgresql":
            return []
        prefix = f"{quote.quote_schema(self.schema)}." if self.schema else ""
        function = f"{prefix}{TABLE}_append_only"
        statements = [
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{_APPEND_ONLY}: % refused', TG_OP; END $$"
        ]
        existing = set(
            conn.execute(
                sa.text("SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass(:t)"),
                {"t": target},
            ).scalars()
        )
        for name, when in (
            (f"{TABLE}_no_change", "BEFORE UPDATE OR DELETE ON {t} FOR EACH ROW"),
            (f"{TABLE}_no_truncate", "BEFORE TRUNCATE ON {t} FOR EACH STATEMENT"),
        ):
            if name not in existing:
                statements.append(
                    f"CREATE TRIGGER {name} {when.format(t=target)} EXECUTE FUNCTION {function}()"
                )
        return statements

    # ---- writing -----------------------------------------------------------------------------
    def append(
        self,
        kind: str,
        *,
        actor: str,
        role: str,
        version: str,
        decision: str,
        reasons: list[str],
        report_sha256: str | None = None,
        data_digests: dict[str, str] | None = None,
    ) -> LedgerEntry:
        """Append one entry after the current head, in one locked transaction; returns it."""
        if kind not in KINDS:
            raise InputError(f"ledger entry kind {kind!r} is not one of {', '.join(KINDS)}")
        self._ensure()
        t = self.table
        try:
            with self._writing() as conn, conn.begin():
                self._locked(conn)
                head = conn.execute(sa.select(t).order_by(t.c.seq.desc()).limit(1)).first()
                now = datetime.now(UTC)
                fields: dict[str, Any] = {
                    "seq": 1 if head is None else head.seq + 1,
                    "at": now if head is None else max(now, _utc(head.at)),  # never backwards
                    "kind": kind,
                    "actor": actor,
                    "role": role,
                    "version": version,
                    "decision": decision,
                    "reasons": list(reasons),
                    "report_sha256": report_sha256,
                    "data_digests": dict(data_digests or {}),
                    "prev_hash": GENESIS if head is None else head.hash,
                }
                entry = _entry(fields | {"hash": entry_hash(fields)})
                conn.execute(sa.insert(t).values(_row(entry)))
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"ledger at {self.where}: cannot append: {exc}") from exc
        return entry

    # ---- reading -----------------------------------------------------------------------------
    def _rows(self, query: sa.Select[Any]) -> list[sa.Row[Any]]:
        self._ensure()
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(query).all())
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"ledger at {self.where}: {exc}") from exc

    def _select(self, version: str | None, kind: str | None) -> sa.Select[Any]:
        t = self.table
        query = sa.select(t)
        if version is not None:
            query = query.where(t.c.version == version)
        if kind is not None:
            if kind not in KINDS:
                raise InputError(f"ledger entry kind {kind!r} is not one of {', '.join(KINDS)}")
            query = query.where(t.c.kind == kind)
        return query

    def entries(self, version: str | None = None, kind: str | None = None) -> list[LedgerEntry]:
        """Entries in ledger order, optionally only of one version and/or kind."""
        query = self._select(version, kind).order_by(self.table.c.seq)
        return [self._read(row) for row in self._rows(query)]

    def last(self, kind: str | None = None, version: str | None = None) -> LedgerEntry | None:
        """The newest entry (of that kind and/or version), or None."""
        query = self._select(version, kind).order_by(self.table.c.seq.desc()).limit(1)
        rows = self._rows(query)
        return self._read(rows[0]) if rows else None

    def _read(self, row: sa.Row[Any]) -> LedgerEntry:
        try:
            return _entry(_fields(row))
        except (InputError, ValueError, TypeError) as exc:
            raise StoreError(
                f"ledger at {self.where}: seq {row.seq} is unreadable ({exc}); "
                "run `riskcast ledger verify`"
            ) from exc

    def verify(self, *, head: str | None = None) -> LedgerVerification:
        """Recompute every hash and link; each problem names the seq and what is wrong.

        Removing the newest entries leaves a valid (shorter) chain: pass a ``head`` recorded
        earlier (e.g. printed by a previous verify) to check that it is still in the chain."""
        rows = self._rows(sa.select(self.table).order_by(self.table.c.seq))
        problems: list[str] = []
        by_hash = {row.hash: row.seq for row in rows}
        expected_seq, prev_hash, prev_at = 1, GENESIS, None
        for row in rows:
            seq = row.seq
            if seq > expected_seq:
                gone = str(expected_seq) if seq == expected_seq + 1 else f"{expected_seq}-{seq - 1}"
                problems.append(f"seq {gone}: missing (deleted entry; seq jumps to {seq})")
            try:
                computed = entry_hash(_fields(row))
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
            at = _utc(row.at)
            if prev_at is not None and at < prev_at:
                problems.append(f"seq {seq}: reordered (recorded before the entry preceding it)")
            expected_seq, prev_hash, prev_at = seq + 1, row.hash, at
        if head is not None and head not in by_hash:
            problems.append(
                f"head {head[:12]}… recorded earlier is not in the ledger "
                "(entries deleted from the end, or edited)"
            )
        newest = rows[-1].hash if rows else None
        return LedgerVerification(
            ok=not problems, entries=len(rows), head=newest, problems=problems
        )


def _sqlite_transactions(engine: sa.Engine) -> None:
    """SQLAlchemy, not the sqlite3 module, opens transactions (SQLAlchemy's documented recipe);
    writers open theirs with BEGIN IMMEDIATE so a second writer waits for the first."""

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA busy_timeout = 30000")
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        immediate = connection.get_execution_options().get("riskcast_immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _fields(row: sa.Row[Any]) -> dict[str, Any]:
    """A stored row as entry fields (JSON columns decoded, time in UTC)."""
    fields = dict(row._mapping)
    fields["at"] = _utc(fields["at"])
    fields["reasons"] = json.loads(fields["reasons"])
    fields["data_digests"] = json.loads(fields["data_digests"])
    return fields


def _row(entry: LedgerEntry) -> dict[str, Any]:
    row = entry.model_dump()
    row["reasons"] = json.dumps(entry.reasons, ensure_ascii=False)
    row["data_digests"] = json.dumps(entry.data_digests, sort_keys=True, ensure_ascii=False)
    return row


def _entry(fields: dict[str, Any]) -> LedgerEntry:
    try:
        return LedgerEntry.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise InputError(f"ledger entry: {problems}") from exc


def _masked(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def open_ledger(settings: Settings | None = None, *, schema: str | None = None) -> Ledger:
    """The configured ledger: ``RISKCAST_DATABASE_URL``, else SQLite under the home."""
    settings = settings or get_settings()
    if settings.database_url is None:
        settings.home.mkdir(parents=True, exist_ok=True)
    return Ledger(settings.effective_database_url, schema=schema)
