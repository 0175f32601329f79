"""The access log: one append-only, hash-chained entry per request that reads person-level data.

Each entry records when (``at``, UTC), who (``actor``, ``role``), why (``purpose``), what
(``action``, the ``persons`` read or the list ``params``), with which ``model_version`` and the
response ``status``. It is a `riskcast.chain.HashChain` like the promotion ledger, in the same
database (SQLite ``riskcast.sqlite`` under ``RISKCAST_HOME``, or ``RISKCAST_DATABASE_URL``),
table ``access_log``: keyed hashes, anchors, serialised appends, append-only triggers and
`AccessLog.verify` work exactly as the ledger's. Safe to append from many threads and processes
at once; the service turns on group commit (`AccessLog.group_commit`), so that concurrent
requests share a transaction and its fsync while each still waits for its own entry to be
committed. A request that writes something itself (a decision) hands that write to
`AccessLog.append_with`, which commits it in the same transaction as its entry: both or neither.

Persons are stored as keyed pseudonyms (`serving.pseudonyms`), resolved through a lookup table
that is written in each entry's transaction; erasure deletes a person's lookup row, so the
chain verifies unchanged and readers (`AccessLog.entries`) show ``erased`` for that person.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar, Unpack

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_jsonable_python

from riskcast.chain import (
    Along,
    ChainBacked,
    ChainSpec,
    ChainVerification,
    HashChain,
    JsonText,
)
from riskcast.chain.seal import seal_problems, sealed_start
from riskcast.chain.settings import ChainSettings, derived_pseudonym_key, load_chain_settings
from riskcast.clock import AwareUtcDatetime, as_utc
from riskcast.db import masked
from riskcast.errors import ConfigError, InputError, StoreError
from riskcast.settings import Settings, get_settings
from serving.pseudonyms import PseudonymTable, is_pseudonym, shown

if TYPE_CHECKING:
    from serving.state import AccessLogWriter

T = TypeVar("T")

TABLE = "access_log"
RECORDED_CACHE = 200_000
"""Pseudonyms whose lookup row this process knows it wrote (about 20 MB at most)."""
COLUMNS: dict[str, sa.types.TypeEngine[Any]] = {
    "actor": sa.Text(),
    "role": sa.Text(),
    "purpose": sa.Text(),
    "action": sa.Text(),
    "persons": JsonText(),
    "params": JsonText(),
    "model_version": sa.Text(),
    "status": sa.Integer(),
}


class EntryFields(TypedDict):
    """What a caller says of one read: who (actor, role), why (purpose), what (action, the
    persons, the request's params), with which model version, and the status answered."""

    actor: str
    role: str
    purpose: str
    action: str
    persons: list[str]
    params: dict[str, Any]
    model_version: str | None
    status: int


class AccessLogEntry(BaseModel):
    """One access: who read which persons (or which list) for what purpose, and the outcome."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int = Field(ge=1)
    at: AwareUtcDatetime
    actor: str = Field(min_length=1)
    role: str = Field(min_length=1)
    purpose: str
    action: str = Field(min_length=1)
    persons: list[str]
    params: dict[str, Any]
    model_version: str | None = None
    status: int = Field(ge=100, le=599)
    prev_hash: str
    hash: str


class AccessLogVerification(ChainVerification):
    """The result of `AccessLog.verify`: ``ok`` iff ``problems`` is empty."""


@dataclass
class _Pending:
    payload: dict[str, Any]
    along: Along | None = None
    done: threading.Event = field(default_factory=threading.Event)
    entry: AccessLogEntry | None = None
    error: BaseException | None = None


class GroupCommitWriter:
    """One thread appends whatever callers queued meanwhile, as one transaction."""

    def __init__(
        self, chain: HashChain[AccessLogEntry], max_batch: int = 256, timeout: float = 60.0
    ) -> None:
        self.chain, self.max_batch, self.timeout = chain, max_batch, timeout
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="access-log", daemon=True)
        self._closed = False
        self._gate = threading.Lock()  # closing and queueing exclude each other
        self._thread.start()

    def append(self, payload: dict[str, Any], along: Along | None = None) -> AccessLogEntry:
        """Queue the entry (and ``along``, committed with it) and wait until it is committed.

        A caller that times out gets `StoreError`, but its entry may still be committed later
        (with its ``along``, never without): like a request killed after the commit."""
        pending = _Pending(payload, along)
        with self._gate:
            if self._closed or not self._thread.is_alive():
                raise StoreError("the access log is closed")
            self._queue.put(pending)
        if not pending.done.wait(self.timeout):
            raise StoreError(f"the access log did not commit within {self.timeout:.0f} s")
        if pending.error is not None:
            raise pending.error
        assert pending.entry is not None
        return pending.entry

    def close(self) -> None:
        with self._gate:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join(timeout=10)
        while True:  # anything still queued will not be written: say so to its caller
            try:
                left = self._queue.get_nowait()
            except queue.Empty:
                return
            if left is not None:
                left.error = StoreError("the access log closed before this entry was written")
                left.done.set()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Pending]) -> None:
        """One transaction for the batch; an entry refused, or whose ``along`` failed, is left
        out and its caller alone gets the error; a failed transaction fails every caller."""
        try:
            outcomes = self.chain.append_batch([(p.payload, p.along) for p in batch])
        except BaseException as exc:  # handed to every caller of the batch
            for p in batch:
                p.error = exc
                p.done.set()
            return
        for p, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, AccessLogEntry):
                p.entry = outcome
            else:
                p.error = outcome
            p.done.set()


class AccessLog(ChainBacked):
    """The access log on SQLite or PostgreSQL; ``schema`` isolates it (PostgreSQL only)."""

    spec = ChainSpec(
        table=TABLE,
        columns=COLUMNS,
        model=AccessLogEntry,
        nullable={"model_version"},
        indexed={"actor", "at"},
        label="access log",
        command="access-log",
    )
    chain: HashChain[AccessLogEntry]
    _writer: GroupCommitWriter | None = None

    def __init__(
        self,
        url: str,
        *,
        key: bytes,
        anchor_dir: Path | None,
        schema: str | None = None,
        pseudonym_key: bytes | None = None,
    ) -> None:
        super().__init__(url, key=key, anchor_dir=anchor_dir, schema=schema)
        self.archive_dir: Path | None = None  # where retention archives sealed segments
        self.use_pseudonym_key(pseudonym_key or derived_pseudonym_key(key))

    def use_pseudonym_key(self, key: bytes) -> None:
        """The key of the persons' pseudonyms (``RISKCAST_PSEUDONYM_KEY``; `open_access_log`)."""
        self.pseudonyms = PseudonymTable(self.engine, self.schema, key)
        self._recorded: set[str] = set()  # pseudonyms whose lookup row this process wrote

    def append(self, **entry: Unpack[EntryFields]) -> AccessLogEntry:
        """Append one entry after the current head, in one locked transaction; returns it.

        ``params`` is stored as JSON (dates, enums and the like in their JSON form); an invalid
        entry raises `InputError` and writes nothing; a database failure raises `StoreError`."""
        return self._append(self.payload(**entry), None)

    def append_with(
        self, along: Callable[[sa.Connection], T], **entry: Unpack[EntryFields]
    ) -> tuple[AccessLogEntry, T]:
        """Append an entry (the keyword arguments of `append`) and commit ``along``'s write in
        the same transaction: both are committed or neither is (with group commit too).
        Returns the entry and what ``along`` returned; ``along`` writes only through the
        connection it is given (in a savepoint: its failure fails only this entry)."""
        returned: list[T] = []

        def run(conn: sa.Connection) -> None:
            returned.append(along(conn))

        appended = self._append(self.payload(**entry), run)
        return appended, returned[-1]

    def _append(self, payload: dict[str, Any], along: Along | None) -> AccessLogEntry:
        """Store the persons as pseudonyms, their lookup rows in the entry's transaction; the
        entry returned shows the ids (as a reader resolves them)."""
        persons = list(payload["persons"])
        names = [self.pseudonyms.of(p) for p in persons]
        new = {n: p for n, p in zip(names, persons, strict=True) if n not in self._recorded}
        stored = {**payload, "persons": names}

        def with_lookup(conn: sa.Connection) -> None:
            self.pseudonyms.ensure(conn)  # under the writers' lock: no race creating it
            self.pseudonyms.record(conn, new)
            if along is not None:
                along(conn)

        needed = new or along is not None or not self.pseudonyms.ready
        entry = self._append_stored(stored, with_lookup if needed else None)
        if len(self._recorded) + len(new) > RECORDED_CACHE:
            self._recorded.clear()  # bounded: a forgotten one costs one ignored insert
        self._recorded.update(new)
        return entry.model_copy(update={"persons": persons})

    def _append_stored(self, payload: dict[str, Any], along: Along | None) -> AccessLogEntry:
        if self._writer is not None:
            return self._writer.append(payload, along)
        if along is None:
            return self.chain.append(payload)
        (outcome,) = self.chain.append_batch([(payload, along)])
        if not isinstance(outcome, AccessLogEntry):
            raise outcome
        return outcome

    def forget(self, conn: sa.Connection, person_id: str) -> int:
        """Erase a person from the log's readers (`PseudonymTable.forget`) on ``conn``."""
        self._recorded.discard(self.pseudonyms.of(person_id))
        return self.pseudonyms.forget(conn, person_id)

    @staticmethod
    def payload(**entry: Unpack[EntryFields]) -> dict[str, Any]:
        given, expected = set(entry), set(EntryFields.__annotations__)
        if given != expected:  # the type checker's rule, kept at run time: nothing half-logged
            wrong = sorted(given - expected) + [f"missing {n}" for n in sorted(expected - given)]
            raise InputError(f"access log entry: {', '.join(wrong)}")
        try:
            params_json = to_jsonable_python(dict(entry["params"]))
            json.dumps(params_json, allow_nan=False)
        except (TypeError, ValueError) as exc:  # pydantic_core's serialisation error is one
            raise InputError(f"access log entry: params: not JSON-serialisable ({exc})") from exc
        return {
            **entry,
            "persons": [str(p) for p in entry["persons"]],
            "params": params_json,
        }

    def group_commit(self) -> None:
        """From now on, concurrent appends share one transaction (and one fsync): each caller
        still returns only once its own entry is committed, so nothing is served unlogged."""
        if self._writer is None:
            self._writer = GroupCommitWriter(self.chain)

    def dispose(self) -> None:
        if self._writer is not None:
            self._writer.close()
        super().dispose()

    def entries(
        self,
        actor: str | None = None,
        person: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[AccessLogEntry]:
        """Entries in log order (oldest first), optionally only by one ``actor``, touching one
        ``person``, recorded at or after ``since`` (naive means UTC); ``limit`` keeps the
        newest ``limit`` of those."""
        if limit is not None and limit < 0:
            raise InputError(f"limit {limit}: must be zero or more")
        if limit == 0:
            return []
        t = self.table
        query = sa.select(t)
        if actor is not None:
            query = query.where(t.c.actor == actor)
        if since is not None:
            start = as_utc(since)
            query = query.where(t.c.at >= start)
        if person is not None:
            # the JSON text holds the pseudonym (or, before pseudonyms, the id) as a JSON
            # string; the match is made exact below
            matches = []
            for value in (self.pseudonyms.of(str(person)), str(person)):
                needle = json.dumps(value, ensure_ascii=False)
                escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                matches.append(t.c.persons.like(f"%{escaped}%", escape="\\"))
            query = query.where(sa.or_(*matches))
        if limit is not None and person is None:
            query = query.order_by(t.c.seq.desc()).limit(limit)
            return self.resolved(self.chain.entries(query)[::-1])
        found = self.resolved(self.chain.entries(query.order_by(t.c.seq)))
        if person is not None:
            found = [e for e in found if person in e.persons]
        return found if limit is None else found[-limit:]

    def resolved(self, entries: list[AccessLogEntry]) -> list[AccessLogEntry]:
        """Entries as readers show them: each pseudonym as its person's id, or ``erased``
        when the person was erased (the stored entries, and so the chain, are unchanged)."""
        names = {p for e in entries for p in e.persons if is_pseudonym(p)}
        if not names:
            return entries
        lookup = self.pseudonyms.resolve(names)
        return [e.model_copy(update={"persons": shown(e.persons, lookup)}) for e in entries]

    def verify(self, *, head: str | None = None) -> AccessLogVerification:
        """Recompute every keyed hash and link and compare the newest entries with the anchors;
        each problem names the seq and what is wrong (content edited, hashed without the key,
        missing, the newest entries deleted, chain broken, reordered). ``head``: a head recorded
        elsewhere that must still be in the log (`HashChain.verify`). After retention the log
        starts at its newest seal's head, and the seals are checked (`riskcast.chain.seal`)."""
        result = self.chain.verify(head=head, start=sealed_start(self.chain)).model_dump()
        sealed = seal_problems(self.chain, self.archive_dir)
        if sealed:
            result.update(ok=False, problems=[*result["problems"], *sealed])
        return AccessLogVerification.model_validate(result)


def open_access_log(
    settings: Settings | None = None,
    *,
    schema: str | None = None,
    chain: ChainSettings | None = None,
) -> AccessLog:
    """The configured access log (see `ChainBacked.configured`), its persons pseudonymised
    with the chain settings' pseudonym key."""
    settings = settings or get_settings()
    chain = chain or load_chain_settings(settings.mode)
    log = AccessLog.configured(settings, schema=schema, chain=chain)
    log.use_pseudonym_key(chain.pseudonym_secret)
    log.archive_dir = archive_dir(settings.home)
    return log


def archive_dir(home: Path) -> Path:
    """Where `riskcast retention apply` archives the access log's sealed segments."""
    return (Path(home) / "archive").resolve()


def same_database(engine: sa.Engine, log: AccessLog) -> None:
    """`ConfigError` unless ``engine`` (the service's tables) and the access log use the same
    database: a decision is committed in its access-log entry's transaction, on the log's
    connection, and must land where the service reads decisions. Both come from
    ``RISKCAST_DATABASE_URL`` (or the SQLite file under the home) today; this keeps it so."""
    if engine.url != log.engine.url:
        raise ConfigError(
            f"the service's database {masked(engine.url)!r} and the access log's "
            f"{log.where!r} differ: decisions are committed with their access-log entries, "
            "so both must be RISKCAST_DATABASE_URL (or the same SQLite file)"
        )


def append_with_entry(
    writer: AccessLogWriter,
    engine: sa.Engine,
    along: Callable[[sa.Connection], T],
    entry: Mapping[str, Any],
) -> T:
    """Commit ``along``'s write and its access-log entry together: in one transaction with the
    service's `AccessLog` (group commit included). A stand-in writer without a database (the
    tests' recording logs) cannot share a transaction: ``along`` is committed on ``engine``
    first, then the entry is handed to it."""
    if isinstance(writer, AccessLog):
        same_database(engine, writer)
        return writer.append_with(along, **entry)[1]
    with engine.begin() as conn:
        value = along(conn)
    writer.append(**entry)
    return value
