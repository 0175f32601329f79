"""Sealing a chain's old segment: retention without breaking verification.

A retention period means old entries must leave the live table, yet the chain's verification
starts at seq 1 from the genesis hash. Sealing keeps it verifiable:

1. in one locked transaction (the writers' lock of `HashChain`), the entries older than a
   cutoff, never the head, are written to an archive file (JSON lines, each entry's columns
   as stored) whose sha256 is taken;
2. a seal row records the segment's last seq and its hash (the *sealed head*), the archive's
   name, sha256 and size, and an HMAC under the chain key over all of it, in the table
   ``<table>_seals`` (so nobody without the key can forge or move a seal);
3. the archived rows are deleted (the append-only triggers are lifted for that statement
   only and restored in the same transaction).

`HashChain.verify` then starts from the newest seal: the first live entry must chain onto the
sealed head (``start``), and `seal_problems` checks each seal's HMAC, that seals only move
forward, and, when the archive file is still there, its sha256. The archive may be moved to
cold storage or deleted under its own retention: verification of the live chain does not need
it. The caller records the seal in the ledger too (`serving.retention`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa

from riskcast.chain.core import GENESIS, HashChain, canonical_json, entry_hash
from riskcast.chain.db import append_only_ddl
from riskcast.clock import as_utc
from riskcast.errors import StoreError

_ISO = "%Y-%m-%dT%H:%M:%S.%fZ"
_ISO_CHRONO = "%Y-%m-%dT%H:%M:%S.%6fZ"  # Polars' %f is nanoseconds: the chain's is micro


@dataclass(frozen=True)
class Seal:
    through_seq: int
    head_hash: str
    entries: int
    archive: str
    archive_sha256: str
    at: datetime
    mac: str


def seals_table(chain: HashChain[Any]) -> sa.Table:
    return sa.Table(
        f"{chain.name}_seals",
        sa.MetaData(schema=chain.schema),
        sa.Column("through_seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("entries", sa.Integer, nullable=False),
        sa.Column("archive", sa.Text, nullable=False),
        sa.Column("archive_sha256", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("mac", sa.String(64), nullable=False),
    )


def seal_mac(key: bytes, fields: dict[str, Any]) -> str:
    """The HMAC of a seal's fields (``mac`` excluded) under the chain key."""
    content = {k: v for k, v in fields.items() if k != "mac"}
    content["at"] = as_utc(content["at"]).strftime(_ISO)
    content["hash"] = ""  # canonical_json drops "hash"; the seal has none of its own
    return hmac.new(key, canonical_json(content), hashlib.sha256).hexdigest()


def seals(chain: HashChain[Any]) -> list[Seal]:
    """Every seal of the chain, oldest first (none when the table does not exist yet)."""
    table = seals_table(chain)
    try:
        with chain.engine.connect() as conn:
            rows = conn.execute(sa.select(table).order_by(table.c.through_seq)).mappings().all()
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):
        return []
    return [Seal(**{**dict(r), "at": as_utc(r["at"])}) for r in rows]


def sealed_start(chain: HashChain[Any]) -> tuple[int, str] | None:
    """(seq, hash) the live chain continues from: the newest seal's head (None: genesis)."""
    found = seals(chain)
    return (found[-1].through_seq, found[-1].head_hash) if found else None


def seal_problems(chain: HashChain[Any], archive_dir: Path | None) -> list[str]:
    """Seals whose HMAC is wrong (forged or edited), that do not move forward, or whose
    archive file, when present in ``archive_dir``, no longer has the recorded sha256."""
    problems: list[str] = []
    last = 0
    for seal in seals(chain):
        if seal_mac(chain.key, seal.__dict__) != seal.mac:
            problems.append(f"seal through seq {seal.through_seq}: not this chain key's HMAC")
        if seal.through_seq <= last:
            problems.append(f"seal through seq {seal.through_seq}: not after seq {last}")
        last = seal.through_seq
        path = None if archive_dir is None else archive_dir / seal.archive
        if path is not None and path.exists():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest != seal.archive_sha256:
                problems.append(
                    f"seal through seq {seal.through_seq}: archive {seal.archive} has sha256 "
                    f"{digest[:12]}…, the seal recorded {seal.archive_sha256[:12]}…"
                )
    return problems


def archive_problems(chain: HashChain[Any], archive_dir: Path) -> tuple[int, list[str]]:
    """Verify the archived segments themselves: every archived entry's HMAC recomputed and its
    link to the one before (from the genesis, or the previous seal's head), and each segment
    ending at its seal's head. Returns (entries checked, problems); a missing archive is a
    problem here (moved to cold storage: verify it there)."""
    checked, problems = 0, []
    prev_seq, prev_hash = 0, GENESIS
    for seal in seals(chain):
        path = archive_dir / seal.archive
        if not path.exists():
            problems.append(f"seal through seq {seal.through_seq}: archive {path} not found")
            prev_seq, prev_hash = seal.through_seq, seal.head_hash
            continue
        rows = pl.read_ndjson(path, infer_schema_length=None).to_dicts()
        for row in rows:
            fields = {**row, "at": datetime.strptime(row["at"], _ISO).replace(tzinfo=UTC)}
            for name in chain.json_columns:
                if fields[name] is not None:
                    fields[name] = json.loads(fields[name])
            if fields["seq"] != prev_seq + 1 or fields["prev_hash"] != prev_hash:
                problems.append(f"archive {seal.archive}: seq {fields['seq']} does not chain on")
            if entry_hash(fields, chain.key) != fields["hash"]:
                problems.append(f"archive {seal.archive}: seq {fields['seq']} content edited")
            prev_seq, prev_hash = fields["seq"], fields["hash"]
            checked += 1
        if (prev_seq, prev_hash) != (seal.through_seq, seal.head_hash):
            problems.append(f"archive {seal.archive}: does not end at its seal's head")
    return checked, problems


def seal_before(chain: HashChain[Any], cutoff: datetime, archive_dir: Path) -> Seal | None:
    """Archive and delete the entries recorded before ``cutoff`` (never the head); the new seal,
    or None when nothing is old enough."""
    chain.ensure()
    table, t = seals_table(chain), chain.table
    try:
        with chain.writing() as conn, conn.begin():
            chain.lock(conn)
            table.create(conn, checkfirst=True)
            head = conn.execute(sa.select(sa.func.max(t.c.seq))).scalar()
            through = conn.execute(
                sa.select(sa.func.max(t.c.seq)).where(t.c.at < as_utc(cutoff))
            ).scalar()
            if head is None or through is None:
                return None
            through = min(int(through), int(head) - 1)  # the head stays: appends chain onto it
            rows = conn.execute(sa.select(t).where(t.c.seq <= through).order_by(t.c.seq)).all()
            if not rows:
                return None
            seal = _archive(chain, rows, archive_dir)
            conn.execute(sa.insert(table).values(**seal.__dict__))
            _delete_through(conn, chain, through)
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"{chain.label} at {chain.where}: cannot seal: {exc}") from exc
    return seal


def _archive(chain: HashChain[Any], rows: Sequence[sa.Row[Any]], archive_dir: Path) -> Seal:
    """The rows as stored (JSON columns as their stored text, ``at`` in ISO UTC), one JSON
    object per line, written in one pass (Polars: a million rows in seconds)."""
    first, last = rows[0], rows[-1]
    archive_dir.mkdir(parents=True, exist_ok=True)
    name = f"{chain.schema + '.' if chain.schema else ''}{chain.name}-{first.seq}-{last.seq}.jsonl"
    columns = [c.name for c in chain.table.columns]
    frame = pl.DataFrame([tuple(r) for r in rows], schema=columns, orient="row")
    kind = frame.schema["at"]
    if isinstance(kind, pl.Datetime):  # naive (SQLite) is UTC, as the chain stores it
        at = pl.col("at")
        at = at.dt.convert_time_zone("UTC") if kind.time_zone else at.dt.replace_time_zone("UTC")
        frame = frame.with_columns(at.dt.strftime(_ISO_CHRONO))
    else:  # pragma: no cover - a driver that returns no datetimes
        frame = frame.with_columns(pl.Series("at", [as_utc(r.at).strftime(_ISO) for r in rows]))
    path = archive_dir / name
    frame.write_ndjson(path)
    digest = hashlib.sha256()
    with path.open("rb") as written:
        for block in iter(lambda: written.read(1 << 20), b""):
            digest.update(block)
    fields: dict[str, Any] = {
        "through_seq": int(last.seq),
        "head_hash": str(last.hash),
        "entries": len(rows),
        "archive": name,
        "archive_sha256": digest.hexdigest(),
        "at": datetime.now(UTC),
    }
    return Seal(**fields, mac=seal_mac(chain.key, fields))


def _delete_through(conn: sa.Connection, chain: HashChain[Any], through: int) -> None:
    """Delete seq <= ``through`` with the append-only triggers lifted in this transaction."""
    t = chain.table
    quote = conn.dialect.identifier_preparer
    target = quote.format_table(t)
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(f"ALTER TABLE {target} DISABLE TRIGGER {t.name}_no_change"))
        conn.execute(sa.delete(t).where(t.c.seq <= through))
        conn.execute(sa.text(f"ALTER TABLE {target} ENABLE TRIGGER {t.name}_no_change"))
        return
    conn.execute(sa.text(f"DROP TRIGGER IF EXISTS {t.name}_no_delete"))
    conn.execute(sa.delete(t).where(t.c.seq <= through))
    for statement in append_only_ddl(conn, t, chain.schema, chain.append_only):
        conn.execute(sa.text(statement))
