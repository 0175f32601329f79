"""The promotion ledger: an append-only, hash-chained record of audits and promotion decisions,
and of monitoring alerts after promotion (kind ``monitoring_alert``, `fairness.monitoring`).

SQLAlchemy Core on SQLite (the embedded default, ``riskcast.sqlite`` under ``RISKCAST_HOME``)
or PostgreSQL (``RISKCAST_DATABASE_URL``; ``schema`` isolates it). One table,
``ledger_entries``, one row per entry, kept by the shared `riskcast.chain.HashChain`:

- ``hash`` is the HMAC-SHA256, keyed with ``RISKCAST_CHAIN_KEY`` (never in the database), of the
  canonical JSON (sorted keys, no spaces, UTF-8) of every other field, ``prev_hash`` included;
  ``prev_hash`` is the previous entry's ``hash`` (64 zeros for the first entry), so editing,
  deleting or reordering an entry breaks the chain, and nobody without the key can re-hash it;
- every commit's head is appended to an anchor file outside the database (under
  ``RISKCAST_HOME/anchors``), so deleting the newest entries is found too;
- appends are serialised: one transaction holding a lock (``BEGIN IMMEDIATE`` on SQLite, a
  transaction-scoped advisory lock on PostgreSQL) reads the head and writes the next entry; the
  primary key on ``seq`` and a unique ``prev_hash`` make a fork impossible even without it;
- triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL), and `verify` recomputes the
  whole chain and compares it with the anchors, so tampering by someone who dropped the
  triggers is still found.
"""

from __future__ import annotations

import re
from typing import Any, Literal, get_args

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from riskcast.chain import (
    GENESIS,
    ChainBacked,
    ChainSpec,
    ChainVerification,
    HashChain,
    JsonText,
    canonical_json,
    entry_hash,
    plain_hash,
)
from riskcast.chain.settings import ChainSettings
from riskcast.clock import AwareUtcDatetime
from riskcast.errors import InputError
from riskcast.names import PERSON_MODEL
from riskcast.settings import Settings

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
    "ledger_version",
    "open_ledger",
    "plain_hash",
    "split_version",
]

TABLE = "ledger_entries"
Kind = Literal[
    "audit",
    "promotion",
    "refusal",
    "override",
    "rollback",
    "erasure",
    "retention",
    "evidence_pack",
    "monitoring_alert",
    "monitor_report",
]
"""``erasure``: a person erased (`serving.erasure`; the person's pseudonym, never the id);
``retention``: old access-log and decision rows archived and removed (`serving.retention`);
``monitoring_alert``: a monitoring check's breaches, or a re-audit due (`fairness.monitoring`);
``monitor_report``: a monitoring check's report kept (its JSON's sha256 and path, checked by
``ledger verify`` like a fairness report; `serving.services.monitoring`)."""
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
    at: AwareUtcDatetime
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

    spec = ChainSpec(
        table=TABLE,
        columns=COLUMNS,
        model=LedgerEntry,
        nullable={"report_sha256"},
        label="ledger",
        command="ledger",
    )
    chain: HashChain[LedgerEntry]

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
        """Recompute every keyed hash and link and compare the newest entries with the anchors;
        each problem names the seq and what is wrong. ``head``: a head recorded elsewhere that
        must still be in the ledger (`HashChain.verify`)."""
        return LedgerVerification.model_validate(self.chain.verify(head=head).model_dump())


MODEL_SEP = "@"
"""Between a model name and its version in an entry's ``version`` (``street-crime@3``)."""


def ledger_version(model_name: str, version: str) -> str:
    """The ``version`` an entry records for ``version`` of ``model_name``: the bare number for
    the person model (as every entry always did), ``<model>@<N>`` for any other model.

    Why in ``version`` and not a new column: one ledger holds both models' decisions (issue 12)
    and a column would change the table and every stored entry's hash; with the name in the
    version, old entries read and verify as they are, a person version filter (``--version
    3``) never matches another model's entry, and `split_version` reads the name back."""
    return version if model_name == PERSON_MODEL else f"{model_name}{MODEL_SEP}{version}"


def split_version(recorded: str) -> tuple[str, str]:
    """(model name, version) of an entry's ``version`` (`ledger_version` read back)."""
    model, sep, version = recorded.rpartition(MODEL_SEP)
    return (model, version) if sep and model else (PERSON_MODEL, recorded)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InputError(f"ledger entry kind {kind!r} is not one of {', '.join(KINDS)}")


def open_ledger(
    settings: Settings | None = None,
    *,
    schema: str | None = None,
    chain: ChainSettings | None = None,
) -> Ledger:
    """The configured ledger (see `ChainBacked.configured`)."""
    return Ledger.configured(settings, schema=schema, chain=chain)
