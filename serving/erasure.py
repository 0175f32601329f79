"""Erasure of one person: `riskcast erase PERSON_ID` and ``POST /v1/admin/erasures``.

What it removes, and why each place:

- the offline store records a tombstone, the person's keyed pseudonym (the same as in the
  access log; `features.store.tombstones`): the delivered files
  are not rewritten, but no reader of the store (feature builds at every as-of, the service's
  directory, labels) sees the person again, and a later or repeated delivery's rows of the
  person are counted as ``erased`` by the ingest, never stored;
- the online store deletes the person's vector and records a new materialisation, so every
  score book (and its cached explanations) built before is dropped and rebuilt without them;
- decisions keep their rows (the counts per unit and officer stay right) with the person id
  replaced by the person's pseudonym and the free text (``reason``) blanked;
- the access log keeps its entries (it is hash-chained): they hold the person's keyed
  pseudonym only, and its lookup row is deleted, so readers show ``erased`` and the chain
  still verifies (`serving.pseudonyms`);
- the ledger gets an ``erasure`` entry naming who, why and the pseudonym, never the id.

Decisions and the lookup row change in one transaction (same database as the access log).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from fairness.ledger import Ledger
from features.online.store import SqlOnlineStore
from features.store.offline import OfflineStore
from features.store.tombstones import add_tombstone
from riskcast.errors import FieldError
from serving.access_log import AccessLog, same_database
from serving.db import decisions

ERASURE_VERSION = "-"
"""The ledger entry's ``version``: an erasure concerns no model version."""


@dataclass(frozen=True)
class ErasureResult:
    """What one erasure did, per place (counts of rows changed)."""

    pseudonym: str
    tombstone_added: bool
    online_vectors: int
    decisions_blanked: int
    lookup_rows: int
    ledger_seq: int
    seconds: float


def check_request(person_id: str, by: str, reason: str, loc: Sequence[str] = ()) -> None:
    """`FieldError` naming the field (under ``loc``, e.g. ``body`` over HTTP): an id, a name and
    a reason (3+ characters) that does not hold the id (the ledger keeps it, never erased)."""
    if not person_id.strip():
        raise FieldError([*loc, "person_id"], "must not be empty")
    if not by.strip():
        raise FieldError([*loc, "by"], "must not be empty")
    if len(reason.strip()) < 3:
        raise FieldError([*loc, "reason"], "must be at least 3 characters")
    if person_id.strip() in reason:
        raise FieldError(
            [*loc, "reason"],
            "must not contain the person's id: the reason is kept in the ledger, which is "
            "append-only and never erased",
        )


def erase_person(
    person_id: str,
    *,
    by: str,
    role: str,
    reason: str,
    home: Path,
    engine: sa.Engine,
    access_log: AccessLog,
    ledger: Ledger,
    online: SqlOnlineStore | None,
    loc: Sequence[str] = (),
) -> ErasureResult:
    """Erase ``person_id`` everywhere riskcast keeps it (see the module's docstring); safe to
    repeat (a second run changes nothing but records another ledger entry)."""
    started = time.perf_counter()
    person_id = person_id.strip()
    check_request(person_id, by, reason, loc)
    same_database(engine, access_log)
    store = OfflineStore(home)
    with store.writer():  # the ingest reads the tombstones under the same lock
        added = add_tombstone(store.root, person_id, key=access_log.pseudonyms.key)
    vectors = online.erase([person_id]) if online is not None else 0
    name = access_log.pseudonyms.of(person_id)
    with engine.begin() as conn:
        blanked = conn.execute(
            sa.update(decisions)
            .where(decisions.c.person_id == person_id)
            .values(person_id=name, reason=None)
        ).rowcount
        lookups = access_log.forget(conn, person_id)
    entry = ledger.append(
        "erasure",
        actor=by,
        role=role,
        version=ERASURE_VERSION,
        decision="erased",
        reasons=[
            f"reason: {reason.strip()}",
            f"person {name} (keyed pseudonym; the id is kept nowhere in clear, the offline "
            "store's tombstone included)",
            f"offline store tombstone {'recorded' if added else 'already there'}; "
            f"{vectors} online vector(s) deleted; {blanked} decision(s) kept with the text "
            f"blanked; {lookups} access-log lookup row(s) deleted",
        ],
        data_digests={"pseudonym": name},
    )
    return ErasureResult(
        pseudonym=name,
        tombstone_added=added,
        online_vectors=vectors,
        decisions_blanked=int(blanked or 0),
        lookup_rows=lookups,
        ledger_seq=entry.seq,
        seconds=time.perf_counter() - started,
    )
