"""An append-only, hash-chained table: the mechanism shared by the ledger and the access log.

SQLAlchemy Core on SQLite or PostgreSQL (``schema`` isolates it there). A `HashChain` owns one
table: ``seq`` (primary key, from 1 without gaps), ``at`` (UTC, never going backwards), the
caller's payload columns, ``prev_hash`` (unique) and ``hash`` (unique):

- ``hash`` is the HMAC-SHA256, keyed with the chain key (``RISKCAST_CHAIN_KEY``, never stored in
  the database), of the canonical JSON (sorted keys, no spaces, UTF-8, ``at`` as
  ``YYYY-MM-DDTHH:MM:SS.ffffffZ``) of every other field, ``prev_hash`` included; ``prev_hash``
  is the previous entry's ``hash`` (64 zeros for the first), so editing, deleting or reordering
  an entry breaks the chain, and without the key nobody can re-hash the entries after an edit.
  Columns typed `JsonText` hold JSON and are hashed decoded;
- every commit's head is appended to an anchor file outside the database
  (`riskcast.chain.anchors`), so deleting the newest entries is found too;
- appends are serialised: one transaction holding a lock (``BEGIN IMMEDIATE`` on SQLite, a
  transaction-scoped advisory lock keyed by schema and table on PostgreSQL) reads the head,
  checks that it carries the key's HMAC, anchors it if its writer has not, and writes the next
  entries; the primary key on ``seq`` and the unique ``prev_hash`` make a fork impossible even
  without it. A caller may add its own write to that transaction (`HashChain.append_batch`),
  so that the write and its entry are committed together or not at all;
- triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) and are re-created when a
  chain is opened; `HashChain.verify` recomputes the whole chain and compares it with the
  anchors, so tampering by someone who dropped the triggers is still found, and names the seq
  and the problem.

Entries are frozen pydantic models whose fields are exactly the table's columns.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from riskcast.chain.anchors import Anchors, anchor_path, location
from riskcast.chain.db import append_only_ddl
from riskcast.chain.verify import GENESIS as GENESIS
from riskcast.chain.verify import Checked, anchor_problems, chain_problems
from riskcast.clock import as_utc as utc
from riskcast.db import IMMEDIATE, make_engine
from riskcast.db import masked as masked
from riskcast.errors import InputError, RiskcastError, StoreError

if TYPE_CHECKING:
    from riskcast.chain.settings import ChainSettings
    from riskcast.settings import Settings

CHAIN_COLUMNS = ("seq", "at", "prev_hash", "hash")

E = TypeVar("E", bound=BaseModel)
Along = Callable[[sa.Connection], object]
"""A caller's own write, run in the transaction that appends its entry (`append_batch`)."""

log = logging.getLogger("riskcast.chain")


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
    anchored: int | None = None  # the newest anchored seq compared (None: no anchor file)
    anchors: str | None = None  # the anchor file compared with


def canonical_json(fields: Mapping[str, Any]) -> bytes:
    """The hashed form of an entry: every field but ``hash``, sorted keys, times in ISO UTC."""
    content = {k: v for k, v in fields.items() if k != "hash"}
    at = content["at"]
    if isinstance(at, datetime):
        content["at"] = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(fields: Mapping[str, Any], key: bytes) -> str:
    """An entry's ``hash``: the HMAC-SHA256 of its canonical JSON under the chain key."""
    return hmac.new(key, canonical_json(fields), hashlib.sha256).hexdigest()


def plain_hash(fields: Mapping[str, Any]) -> str:
    """The unkeyed sha256 that chains used before chain keys: recognised by `verify` to say
    "written without the key" rather than "edited"; never written any more."""
    return hashlib.sha256(canonical_json(fields)).hexdigest()


class HashChain(Generic[E]):
    """One hash-chained, append-only table of ``model`` entries.

    ``columns`` maps each payload column to its SQLAlchemy type (`JsonText` for JSON values);
    ``nullable`` names the payload columns that may be NULL, ``indexed`` those worth an index.
    ``label`` names the chain in messages ("ledger"), ``command`` the CLI group that verifies it.
    ``key`` is the chain key; ``anchor_dir`` holds the anchor files (None: no anchors, for
    tests of the bare chain only: `verify` cannot then find the newest entries deleted).
    """

    def __init__(
        self,
        url: str,
        *,
        table: str,
        columns: Mapping[str, sa.types.TypeEngine[Any] | type[sa.types.TypeEngine[Any]]],
        model: type[E],
        key: bytes,
        anchor_dir: Path | None,
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
        self.engine = make_engine(url, what=self.label)
        self.dialect = self.engine.dialect.name
        if schema is not None and self.dialect != "postgresql":
            raise InputError(f"schema {schema!r}: only a PostgreSQL {self.label} takes a schema")
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
        if not key:
            raise ValueError("the chain key must not be empty")
        self.key = key
        self.anchors = (
            None
            if anchor_dir is None
            else Anchors(
                anchor_path(anchor_dir, self.engine.url, schema, table),
                location(self.engine.url, schema, table),
            )
        )
        # statements built once: building one costs more than running it
        self._head = sa.select(self.table).order_by(self.table.c.seq.desc()).limit(1)
        self._insert = sa.insert(self.table)
        self._ready = False

    @property
    def where(self) -> str:
        """The database URL without its password (for messages)."""
        return masked(self.engine.url)

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
        return conn.execution_options(**{IMMEDIATE: True})

    def ensure(self) -> None:
        """Create the table and its append-only triggers if missing (once per instance)."""
        if self._ready:
            return
        try:
            with self.writing() as conn, conn.begin():
                self.lock(conn)
                self.table.create(conn, checkfirst=True)
                for statement in append_only_ddl(conn, self.table, self.schema, self.append_only):
                    conn.execute(sa.text(statement))
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"{self.label} at {self.where}: cannot create it: {exc}") from exc
        self._ready = True

    # ---- writing -----------------------------------------------------------------------------
    def append(self, payload: Mapping[str, Any]) -> E:
        """Append one entry after the current head, in one locked transaction; returns it.

        ``payload`` holds every payload column; an entry the model refuses raises `InputError`
        and writes nothing."""
        return self.append_many([payload])[0]

    def append_many(self, payloads: Sequence[Mapping[str, Any]]) -> list[E]:
        """Append entries in order, in one locked transaction (one commit, one fsync): all are
        written or none (`InputError` for the first refused). Each is chained as if alone."""
        for payload in payloads:
            self.check(payload)
        entries: list[E] = []
        for outcome in self.append_batch([(payload, None) for payload in payloads]):
            if isinstance(outcome, RiskcastError):  # pragma: no cover - checked just above
                raise outcome
            entries.append(outcome)
        return entries

    def append_batch(
        self, items: Sequence[tuple[Mapping[str, Any], Along | None]]
    ) -> list[E | RiskcastError]:
        """Group commit: each item's entry and its caller's own write (``along``, run on the
        transaction's connection in a savepoint, before the entries are inserted) are committed
        together in one locked transaction, or neither is.

        An item whose payload is refused (`InputError`) or whose ``along`` fails (its error if
        a `RiskcastError`, else a `StoreError`) gets its error in its place and is left out,
        the others are chained without it. A failure of the transaction itself (database,
        anchor file, a head without the key's HMAC) raises `StoreError`: nothing is written."""
        outcomes: list[E | RiskcastError | None] = []
        for payload, _ in items:
            try:
                self.check(payload)
            except InputError as exc:
                outcomes.append(exc)
            else:
                outcomes.append(None)
        todo = [i for i, outcome in enumerate(outcomes) if outcome is None]
        if todo:
            self._commit(items, todo, outcomes)
        return [outcome for outcome in outcomes if outcome is not None]

    def check(self, payload: Mapping[str, Any]) -> None:
        """`InputError` unless ``payload`` would make a valid entry (checked before locking)."""
        if set(payload) != set(self.payload):
            raise InputError(
                f"{self.label} entry: fields must be exactly {', '.join(self.payload)}"
            )
        placeholders = {"seq": 1, "at": datetime.now(UTC), "prev_hash": GENESIS, "hash": GENESIS}
        self.validate({**payload, **placeholders})

    def _commit(
        self,
        items: Sequence[tuple[Mapping[str, Any], Along | None]],
        todo: list[int],
        outcomes: list[E | RiskcastError | None],
    ) -> None:
        self.ensure()
        written: list[E] = []
        try:
            with self.writing() as conn, conn.begin():
                self.lock(conn)
                seq, prev_hash, last_at = self._keyed_head(conn)
                self._cover(seq, prev_hash)
                for i in todo:
                    payload, along = items[i]
                    if along is not None:
                        failure = self._run(conn, along)
                        if failure is not None:
                            outcomes[i] = failure
                            continue
                    entry = self._chained(seq + 1, payload, prev_hash, last_at)
                    written.append(entry)
                    outcomes[i] = entry
                    seq, prev_hash, last_at = seq + 1, entry.hash, entry.at  # type: ignore[attr-defined]
                if written:
                    conn.execute(self._insert, [self._row(e) for e in written])
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"{self.label} at {self.where}: cannot append: {exc}") from exc
        if written and self.anchors is not None:
            last = written[-1]
            try:
                self.anchors.record(last.seq, last.hash)  # type: ignore[attr-defined]
            except OSError as exc:  # committed: the next append anchors it before committing
                log.warning(
                    "%s: cannot anchor the head at %s: %s", self.label, self.anchors.path, exc
                )

    def _keyed_head(self, conn: sa.Connection) -> tuple[int, str, datetime | None]:
        """The head's seq, hash and time, refusing to chain onto an entry without the key's HMAC
        (another key, an older unkeyed chain, or tampering: appending would bury it)."""
        head = conn.execute(self._head).first()
        if head is None:
            return 0, GENESIS, None
        try:
            keyed = entry_hash(self.fields(head), self.key) == head.hash
        except (ValueError, TypeError):
            keyed = False
        if not keyed:
            raise StoreError(
                f"{self.label} at {self.where}: its newest entry (seq {head.seq}) does not carry "
                "this chain key's HMAC, so nothing is appended after it: the chain was written "
                "with another RISKCAST_CHAIN_KEY, or by a riskcast before chain keys (recreate "
                f"it: serving/README.md, 'Chain key'), or tampered with; run `riskcast "
                f"{self.command} verify`"
            )
        return head.seq, head.hash, utc(head.at)

    def _cover(self, seq: int, head_hash: str) -> None:
        """Anchor the head just read unless it is (its writer may have died after committing),
        before committing anything after it; refuse to commit if the anchor cannot be written."""
        if self.anchors is None:
            return
        try:
            self.anchors.cover(seq, head_hash)
        except OSError as exc:
            raise StoreError(
                f"{self.label}: cannot write its anchor file {self.anchors.path} "
                f"(RISKCAST_CHAIN_ANCHOR_DIR): {exc}"
            ) from exc

    def _run(self, conn: sa.Connection, along: Along) -> RiskcastError | None:
        """Run a caller's write in a savepoint; its failure undoes only that write."""
        try:
            with conn.begin_nested():
                along(conn)
        except RiskcastError as exc:
            return exc
        except Exception as exc:  # handed to that caller, who raises it
            error = StoreError(
                f"{self.label}: the write to commit with this entry failed, so neither was "
                f"written: {exc}"
            )
            error.__cause__ = exc
            return error
        return None

    def _chained(
        self, seq: int, payload: Mapping[str, Any], prev_hash: str, last_at: datetime | None
    ) -> E:
        now = datetime.now(UTC)
        fields: dict[str, Any] = {
            "seq": seq,
            "at": now if last_at is None else max(now, last_at),  # never backwards
            **payload,
            "prev_hash": prev_hash,
        }
        checked = self.validate(fields | {"hash": GENESIS}).model_dump()
        return self.model.model_construct(**(checked | {"hash": entry_hash(checked, self.key)}))

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

    def verify(
        self, *, head: str | None = None, start: tuple[int, str] | None = None
    ) -> ChainVerification:
        """Recompute every HMAC and link and compare the table with its anchors; each problem
        names the seq and what is wrong (content edited, hashed without the key, missing i.e.
        deleted, the newest entries deleted, chain broken, reordered).

        ``head``, a head recorded elsewhere (e.g. printed by a previous verify), is checked to
        still be in the chain; the anchors make that unnecessary for deletions. ``start``: the
        sealed head the live rows continue from (`riskcast.chain.seal`)."""
        anchors = None if self.anchors is None else self.anchors.read()  # before the table
        rows = [
            self._checked(row)
            for row in self.rows(sa.select(self.table).order_by(self.table.c.seq))
        ]
        problems = chain_problems(rows, self.label, start)
        if self.anchors is not None:
            if anchors is None and self.anchors.path.exists():
                anchors = []  # created since: the first commit came after the anchors were read
            problems += anchor_problems(rows, anchors, self.anchors.path, self.label)
        if head is not None and head not in {row.hash for row in rows}:
            problems.append(
                f"head {head[:12]}… recorded earlier is not in the {self.label} "
                "(entries deleted from the end, or edited)"
            )
        return ChainVerification(
            ok=not problems,
            entries=len(rows),
            head=rows[-1].hash if rows else None,
            problems=problems,
            anchored=max((a.seq for a in anchors), default=None) if anchors else None,
            anchors=None if self.anchors is None else str(self.anchors.path),
        )

    def _checked(self, row: sa.Row[Any]) -> Checked:
        base = {"seq": row.seq, "at": utc(row.at), "prev_hash": row.prev_hash, "hash": row.hash}
        try:
            fields = self.fields(row)
            return Checked(**base, keyed=entry_hash(fields, self.key), plain=plain_hash(fields))
        except (ValueError, TypeError) as exc:
            return Checked(**base, unreadable=str(exc))


@dataclass(frozen=True)
class ChainSpec:
    """What a typed log declares about its chain: the `HashChain` arguments that do not depend
    on the deployment (table, payload columns, entry model, nullable and indexed columns, the
    names used in messages)."""

    table: str
    columns: Mapping[str, sa.types.TypeEngine[Any] | type[sa.types.TypeEngine[Any]]]
    model: type[BaseModel]
    nullable: Collection[str] = ()
    indexed: Collection[str] = ()
    label: str | None = None
    command: str | None = None


class ChainBacked:
    """Plumbing shared by typed logs built on one `HashChain` (the ledger, the access log):
    a subclass declares its `spec`; the deployment gives the URL, key, anchors and schema.

    ``key`` is the chain key, ``anchor_dir`` where the heads are anchored (the logs' openers
    take both from `ChainSettings`; None leaves the log unanchored, for tests only)."""

    spec: ClassVar[ChainSpec]
    chain: HashChain[Any]
    schema: str | None

    def __init__(
        self, url: str, *, key: bytes, anchor_dir: Path | None, schema: str | None = None
    ) -> None:
        spec = self.spec
        self.chain = HashChain(
            url,
            table=spec.table,
            columns=spec.columns,
            model=spec.model,
            key=key,
            anchor_dir=anchor_dir,
            schema=schema,
            nullable=spec.nullable,
            indexed=spec.indexed,
            label=spec.label,
            command=spec.command,
        )
        self.schema = schema

    @classmethod
    def configured(
        cls,
        settings: Settings | None = None,
        *,
        schema: str | None = None,
        chain: ChainSettings | None = None,
    ) -> Self:
        """The deployment's log: ``RISKCAST_DATABASE_URL``, else SQLite under the home (the
        ledger and the access log share it); chain key and anchors from ``chain``, else the
        environment (``RISKCAST_CHAIN_KEY``, ``RISKCAST_CHAIN_ANCHOR_DIR``, default ``anchors``
        under the home)."""
        from riskcast.chain.settings import load_chain_settings
        from riskcast.settings import get_settings

        settings = settings or get_settings()
        chain = chain or load_chain_settings(settings.mode)
        if settings.database_url is None:
            settings.home.mkdir(parents=True, exist_ok=True)
        return cls(
            settings.effective_database_url,
            key=chain.key,
            anchor_dir=chain.anchor_dir(settings.home),
            schema=schema,
        )

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
