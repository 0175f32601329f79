"""The promotion ledger: an append-only, hash-chained record of audits and promotion decisions.

SQLAlchemy Core on SQLite (the embedded default, ``riskcast.sqlite`` under ``RISKCAST_HOME``)
or PostgreSQL (``RISKCAST_DATABASE_URL``; ``schema`` isolates it). One table,
``ledger_entries``, one row per entry, kept by the shared `features.chain.HashChain`:

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

import re
from datetime import UTC, datetime
from typing import Any, Literal, get_args

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from features.chain import (
    GENESIS,
    ChainBacked,
    ChainVerification,
    HashChain,
    JsonText,
    canonical_json,
    entry_hash,
)
from features.errors import InputError
from features.settings import Settings, get_settings

__all__ = [
    "GENESIS",
    "KINDS",
    "TABLE",
    "Kind",
    "Ledger",
    "LedgerEntry",
    "LedgerVerification",
    "canonical_json",
    "entry_hash",
    "open_ledger",
]

TABLE = "ledger_entries"
Kind = Literal["audit", "promotion", "refusal", "override", "rollback"]
KINDS: tuple[str, ...] = get_args(Kind)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
COLUMNS: dict[str, sa.types.TypeEngine[Any]] = {
    "kind": sa.String(16),
    "actor": sa.Text(),
    "role": sa.Text(),
    "version": sa.Text(),
    "decision": sa.Text(),
    "reasons": JsonText(),
    "report_sha256": sa.String(64),
    "data_digests": JsonText(),
}


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


class LedgerVerification(ChainVerification):
    """The result of `Ledger.verify`: ``ok`` iff ``problems`` is empty."""


class Ledger(ChainBacked):
    """The ledger on SQLite or PostgreSQL; ``schema`` isolates it (PostgreSQL only)."""

    def __init__(self, url: str, *, schema: str | None = None) -> None:
        self.chain: HashChain[LedgerEntry] = HashChain(
            url,
            table=TABLE,
            columns=COLUMNS,
            model=LedgerEntry,
            schema=schema,
            nullable={"report_sha256"},
            label="ledger",
            command="ledger",
        )
        self.schema = schema

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
        _check_kind(kind)
        return self.chain.append(
            {
                "kind": kind,
                "actor": actor,
                "role": role,
                "version": version,
                "decision": decision,
                "reasons": list(reasons),
                "report_sha256": report_sha256,
                "data_digests": dict(data_digests or {}),
            }
        )

    # ---- reading -----------------------------------------------------------------------------
    def _select(self, version: str | None, kind: str | None) -> sa.Select[Any]:
        t = self.table
        query = sa.select(t)
        if version is not None:
            query = query.where(t.c.version == version)
        if kind is not None:
            _check_kind(kind)
            query = query.where(t.c.kind == kind)
        return query

    def entries(self, version: str | None = None, kind: str | None = None) -> list[LedgerEntry]:
        """Entries in ledger order, optionally only of one version and/or kind."""
        return self.chain.entries(self._select(version, kind).order_by(self.table.c.seq))

    def last(self, kind: str | None = None, version: str | None = None) -> LedgerEntry | None:
        """The newest entry (of that kind and/or version), or None."""
        query = self._select(version, kind).order_by(self.table.c.seq.desc()).limit(1)
        found = self.chain.entries(query)
        return found[0] if found else None

    def verify(self, *, head: str | None = None) -> LedgerVerification:
        """Recompute every hash and link; each problem names the seq and what is wrong.

        Removing the newest entries leaves a valid (shorter) chain: pass a ``head`` recorded
        earlier (e.g. printed by a previous verify) to check that it is still in the chain."""
        return LedgerVerification.model_validate(self.chain.verify(head=head).model_dump())


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InputError(f"ledger entry kind {kind!r} is not one of {', '.join(KINDS)}")


def open_ledger(settings: Settings | None = None, *, schema: str | None = None) -> Ledger:
    """The configured ledger: ``RISKCAST_DATABASE_URL``, else SQLite under the home."""
    settings = settings or get_settings()
    if settings.database_url is None:
        settings.home.mkdir(parents=True, exist_ok=True)
    return Ledger(settings.effective_database_url, schema=schema)
