"""The access log: one append-only, hash-chained entry per request that reads person-level data.

Each entry records when (``at``, UTC), who (``actor``, ``role``), why (``purpose``), what
(``action``, the ``persons`` read or the list ``params``), with which ``model_version`` and the
response ``status``. It is a `features.chain.HashChain` like the promotion ledger, in the same
database (SQLite ``riskcast.sqlite`` under ``RISKCAST_HOME``, or ``RISKCAST_DATABASE_URL``),
table ``access_log``: hashes, serialised appends, append-only triggers and `AccessLog.verify`
work exactly as the ledger's. Safe to append from many threads and processes at once; the
service turns on group commit (`AccessLog.group_commit`), so that concurrent requests share a
transaction and its fsync while each still waits for its own entry to be committed.
"""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import to_jsonable_python

from features.chain import ChainBacked, ChainVerification, HashChain, JsonText
from features.errors import InputError, StoreError
from features.settings import Settings, get_settings

TABLE = "access_log"
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


class AccessLogEntry(BaseModel):
    """One access: who read which persons (or which list) for what purpose, and the outcome."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int = Field(ge=1)
    at: datetime
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

    @field_validator("at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must be timezone-aware (UTC)")
        return value.astimezone(UTC)


class AccessLogVerification(ChainVerification):
    """The result of `AccessLog.verify`: ``ok`` iff ``problems`` is empty."""


@dataclass
class _Pending:
    payload: dict[str, Any]
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

    def append(self, payload: dict[str, Any]) -> AccessLogEntry:
        pending = _Pending(payload)
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
        try:
            entries = self.chain.append_many([p.payload for p in batch])
        except InputError:  # one bad entry must not cost the others theirs: one by one
            for p in batch:
                try:
                    p.entry = self.chain.append(p.payload)
                except BaseException as exc:  # handed to the caller, who raises it
                    p.error = exc
                p.done.set()
            return
        except BaseException as exc:  # handed to every caller of the batch
            for p in batch:
                p.error = exc
                p.done.set()
            return
        for p, entry in zip(batch, entries, strict=True):
            p.entry = entry
            p.done.set()


class AccessLog(ChainBacked):
    """The access log on SQLite or PostgreSQL; ``schema`` isolates it (PostgreSQL only)."""

    def __init__(self, url: str, *, schema: str | None = None) -> None:
        self.chain: HashChain[AccessLogEntry] = HashChain(
            url,
            table=TABLE,
            columns=COLUMNS,
            model=AccessLogEntry,
            schema=schema,
            nullable={"model_version"},
            indexed={"actor", "at"},
            label="access log",
            command="access-log",
        )
        self.schema = schema
        self._writer: GroupCommitWriter | None = None

    def append(
        self,
        *,
        actor: str,
        role: str,
        purpose: str,
        action: str,
        persons: list[str],
        params: dict[str, Any],
        model_version: str | None,
        status: int,
    ) -> AccessLogEntry:
        """Append one entry after the current head, in one locked transaction; returns it.

        ``params`` is stored as JSON (dates, enums and the like in their JSON form); an invalid
        entry raises `InputError` and writes nothing; a database failure raises `StoreError`."""
        payload = self.payload(
            actor=actor,
            role=role,
            purpose=purpose,
            action=action,
            persons=persons,
            params=params,
            model_version=model_version,
            status=status,
        )
        if self._writer is not None:
            return self._writer.append(payload)
        return self.chain.append(payload)

    @staticmethod
    def payload(
        *,
        actor: str,
        role: str,
        purpose: str,
        action: str,
        persons: list[str],
        params: dict[str, Any],
        model_version: str | None,
        status: int,
    ) -> dict[str, Any]:
        try:
            params_json = to_jsonable_python(dict(params))
            json.dumps(params_json, allow_nan=False)
        except (TypeError, ValueError) as exc:  # pydantic_core's serialisation error is one
            raise InputError(f"access log entry: params: not JSON-serialisable ({exc})") from exc
        return {
            "actor": actor,
            "role": role,
            "purpose": purpose,
            "action": action,
            "persons": [str(p) for p in persons],
            "params": params_json,
            "model_version": model_version,
            "status": status,
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
            start = since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)
            query = query.where(t.c.at >= start)
        if person is not None:
            # the JSON text holds the id as a JSON string; the match is made exact below
            needle = json.dumps(str(person), ensure_ascii=False)
            escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(t.c.persons.like(f"%{escaped}%", escape="\\"))
        if limit is not None and person is None:
            query = query.order_by(t.c.seq.desc()).limit(limit)
            return self.chain.entries(query)[::-1]
        found = self.chain.entries(query.order_by(t.c.seq))
        if person is not None:
            found = [e for e in found if person in e.persons]
        return found if limit is None else found[-limit:]

    def verify(self, *, head: str | None = None) -> AccessLogVerification:
        """Recompute every hash and link; each problem names the seq and what is wrong
        (content edited, missing, chain broken, reordered).

        Removing the newest entries leaves a valid (shorter) chain: pass a ``head`` recorded
        earlier (e.g. printed by a previous verify) to check that it is still in the chain."""
        return AccessLogVerification.model_validate(self.chain.verify(head=head).model_dump())


def open_access_log(settings: Settings | None = None, *, schema: str | None = None) -> AccessLog:
    """The configured access log (same database as the ledger): ``RISKCAST_DATABASE_URL``,
    else SQLite under the home."""
    settings = settings or get_settings()
    if settings.database_url is None:
        settings.home.mkdir(parents=True, exist_ok=True)
    return AccessLog(settings.effective_database_url, schema=schema)
