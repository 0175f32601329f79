"""The bitemporal offline store: every version of every row, Parquet under ``RISKCAST_HOME``.

Layout (``<home>/store``)::

    state.json                         the committed state; replaced atomically (temp + rename)
    tables/<table>/<seq>-<name>.parquet   all versions of a table as of that delivery
    quarantine/<name>/<table>.parquet     rejected rows: original values, rule ids, messages
    reports/<name>.json                the ingest report of each delivery

``<name>`` is `storage_name` of the delivery's ``extract_id``: a readable part plus a digest of
the exact id, so two deliveries never share a file or folder. ``state.json`` records every
path, and readers follow it rather than rebuild names: stores written before this scheme (whose
names were the bare sanitised id) stay readable as they are.

Each table file holds the contract columns plus the version columns below. A version is
visible as of a date ``T`` iff the row's own knowledge time, the version's ``_valid_from``
(null for a row's first version: it is known from its own knowledge time) are before the end
of ``T`` and ``_valid_to`` (when a correction or deletion superseded it) is not.

Only ``state.json`` says what is committed: files it does not name are leftovers of a crashed
write and are removed by the next commit.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import posixpath
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from features.contract import TABLES, Table
from features.store.tombstones import drop_erased, erased_ids
from riskcast import atomic
from riskcast.errors import NotFoundError, StoreError

VALID_FROM = "_valid_from"
VALID_TO = "_valid_to"
ROW_HASH = "_row_hash"
FIRST_EXTRACT = "_extract_id"
VERSION_COLUMNS: dict[str, pl.DataType] = {
    ROW_HASH: pl.UInt64(),
    FIRST_EXTRACT: pl.String(),
    VALID_FROM: pl.Datetime("us", "UTC"),
    VALID_TO: pl.Datetime("us", "UTC"),
}
STATE_FORMAT = 1
_READABLE_MAX = 40
_DIGEST_CHARS = 16
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def storage_name(extract_id: str) -> str:
    """The file and folder name of a delivery: ``<readable>-<16 hex of sha256(extract_id)>``.

    Why not the sanitised id alone: sanitising is not injective (``sim_1``, ``sim/1`` and
    ``sim:1`` all become ``sim_1``; ``SIM_1`` and ``sim_1`` are one name on a case-insensitive
    file system), and two deliveries sharing a name overwrote each other's quarantine and
    report. The digest of the exact id (its UTF-8 bytes) tells them apart; lowercase hex, so it
    survives case folding. The readable part keeps only ASCII letters, digits, ``.``, ``_`` and
    ``-`` (no separator, no Unicode a file system could normalise), never starts with a dot (no
    ``..``, no hidden file) and is cut at 40 characters, so a name is always one short path
    component. Two ids get one name only if 64 bits of SHA-256 collide; the ingest refuses even
    that (`StoreState.name_owner`) rather than trust it.
    """
    readable = _UNSAFE.sub("_", extract_id)[:_READABLE_MAX].lstrip(".") or "extract"
    exact = extract_id.encode("utf-8", "surrogatepass")  # total, though manifests refuse those
    return f"{readable}-{hashlib.sha256(exact).hexdigest()[:_DIGEST_CHARS]}"


def end_of_day(as_of: date) -> datetime:
    """As of ``T`` means the end of day ``T`` in UTC: known iff strictly before ``T+1 00:00Z``."""
    return datetime.combine(as_of + timedelta(days=1), time(0), tzinfo=UTC)


def visible_as_of(t: Table, as_of: date) -> pl.Expr:
    """Rows of ``t`` whose version was the current one, and known, at the end of ``as_of``."""
    cutoff = pl.lit(end_of_day(as_of), dtype=pl.Datetime("us", "UTC"))
    known = pl.col(VALID_FROM).is_null() | (pl.col(VALID_FROM) < cutoff)
    if t.knowledge_time is not None:
        known = known & (pl.col(t.knowledge_time) < cutoff)
    not_superseded = pl.col(VALID_TO).is_null() | (pl.col(VALID_TO) >= cutoff)
    return known & not_superseded


@dataclass(frozen=True)
class DeliveryRecord:
    extract_id: str
    extracted_at: datetime
    ingested_at: datetime
    tables: tuple[str, ...]
    report: str

    def to_json(self) -> dict[str, Any]:
        return {
            "extract_id": self.extract_id,
            "extracted_at": self.extracted_at.isoformat(),
            "ingested_at": self.ingested_at.isoformat(),
            "tables": list(self.tables),
            "report": self.report,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> DeliveryRecord:
        return cls(
            extract_id=raw["extract_id"],
            extracted_at=datetime.fromisoformat(raw["extracted_at"]),
            ingested_at=datetime.fromisoformat(raw["ingested_at"]),
            tables=tuple(raw["tables"]),
            report=raw["report"],
        )


@dataclass(frozen=True)
class StoreState:
    deliveries: tuple[DeliveryRecord, ...] = ()
    tables: dict[str, str] = field(default_factory=dict)
    quarantine: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def last_delivery(self) -> DeliveryRecord | None:
        return self.deliveries[-1] if self.deliveries else None

    def referenced_files(self) -> set[str]:
        """Every file this state names, relative to the store root (normalised)."""
        paths: set[str] = set(self.tables.values())
        paths.update(p for q in self.quarantine.values() for p in q.values())
        paths.update(d.report for d in self.deliveries)
        return {posixpath.normpath(p) for p in paths}

    def name_owner(self, extract_id: str) -> str | None:
        """The committed delivery (other than ``extract_id``) whose report or quarantine already
        uses ``extract_id``'s storage name, compared case-insensitively; None if it is free.

        Names from before `storage_name` (bare sanitised ids) count too, so a new delivery can
        never write into a folder an older one owns, whatever its name looks like.
        """
        wanted = storage_name(extract_id).casefold()
        for d in self.deliveries:
            if d.extract_id == extract_id:
                continue
            used = {posixpath.basename(d.report).removesuffix(".json")}
            used.update(
                posixpath.basename(posixpath.dirname(p))
                for p in self.quarantine.get(d.extract_id, {}).values()
            )
            if wanted in {u.casefold() for u in used}:
                return d.extract_id
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "deliveries": [d.to_json() for d in self.deliveries],
            "tables": dict(sorted(self.tables.items())),
            "quarantine": self.quarantine,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> StoreState:
        if raw.get("format") != STATE_FORMAT:
            raise StoreError(f"store state has format {raw.get('format')!r}, expected 1")
        return cls(
            deliveries=tuple(DeliveryRecord.from_json(d) for d in raw["deliveries"]),
            tables=dict(raw["tables"]),
            quarantine={k: dict(v) for k, v in raw.get("quarantine", {}).items()},
        )


class OfflineStore:
    """Reads committed state and commits new state atomically; one writer at a time."""

    def __init__(self, home: Path) -> None:
        self.root = Path(home) / "store"

    # ---- reading -------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.root / "state.json"

    def state(self) -> StoreState:
        if not self.state_path.exists():
            return StoreState()
        try:
            raw = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(f"cannot read {self.state_path}: {exc}") from exc
        return StoreState.from_json(raw)

    def has_table(self, name: str) -> bool:
        return name in self.state().tables

    def scan(self, name: str) -> pl.LazyFrame:
        """All versions of a table, without erased persons' rows (`features.store.tombstones`);
        raises NotFoundError if it was never delivered."""
        table = TABLES[name]  # unknown names fail loudly
        rel = self.state().tables.get(name)
        if rel is None:
            raise NotFoundError(
                f"table {name!r} has not been delivered to the store at {self.root}"
            )
        frame = pl.scan_parquet(self.root / rel)
        return drop_erased(frame, erased_ids(self.root)) if table.has_person else frame

    def scan_as_of(self, name: str, as_of: date) -> pl.LazyFrame:
        """The rows of a table as they were known at the end of ``as_of``."""
        return self.scan(name).filter(visible_as_of(TABLES[name], as_of))

    def read_report(self, extract_id: str) -> dict[str, Any]:
        """The ingest report of a committed delivery (a crashed ingest's leftover is not one)."""
        record = next((d for d in self.state().deliveries if d.extract_id == extract_id), None)
        if record is None or not (self.root / record.report).exists():
            raise NotFoundError(f"no ingest report for extract {extract_id!r}")
        return self.report_of(record)

    def report_of(self, record: DeliveryRecord) -> dict[str, Any]:
        """The stored report of ``record``, checked to be that delivery's own.

        Raises `StoreError` if the file cannot be read or holds another extract's report: in
        stores written before `storage_name`, a later delivery whose id sanitised alike
        overwrote it, and answering with the other delivery's counts would be wrong.
        """
        path = self.root / record.report
        try:
            result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read the ingest report {path}: {exc}") from exc
        holder = result.get("extract_id") if isinstance(result, dict) else None
        if holder != record.extract_id:
            raise StoreError(
                f"the ingest report of extract {record.extract_id!r} ({path}) holds that of "
                f"extract {holder!r}: their storage names collided in an older riskcast and "
                "the original report was overwritten"
            )
        return result

    # ---- writing -------------------------------------------------------------------------
    @contextlib.contextmanager
    def writer(self) -> Iterator[StoreWriter]:
        """Hold the store's write lock; nothing is visible until ``StoreWriter.commit``."""
        self.root.mkdir(parents=True, exist_ok=True)
        lock_path = self.root / ".lock"
        with lock_path.open("w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise StoreError(f"another process is writing to the store at {self.root}") from exc
            try:
                yield StoreWriter(self)
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


class StoreWriter:
    """Stages files under the store and publishes them with one atomic rename of state.json."""

    def __init__(self, store: OfflineStore) -> None:
        self.store = store
        self.base = store.state()
        self._committed = self.base.referenced_files()

    def table_path(self, name: str, extract_id: str) -> str:
        seq = len(self.base.deliveries) + 1
        return f"tables/{name}/{seq:05d}-{storage_name(extract_id)}.parquet"

    def quarantine_path(self, name: str, extract_id: str) -> str:
        return f"quarantine/{storage_name(extract_id)}/{name}.parquet"

    def report_path(self, extract_id: str) -> str:
        return f"reports/{storage_name(extract_id)}.json"

    def _target(self, rel: str) -> Path:
        """Where to stage ``rel``; refuses to overwrite a committed file or leave the store.

        The last line of defence behind unique names: a staged write must never replace
        what ``state.json`` already publishes (that is how a quarantine was once lost).
        """
        norm = posixpath.normpath(rel)
        if norm.startswith(("../", "/")) or norm in {".", ".."}:
            raise StoreError(f"refusing to write {rel!r}: outside the store at {self.store.root}")
        if norm in self._committed:
            raise StoreError(
                f"refusing to overwrite {rel!r}: it belongs to a committed delivery of the store "
                f"at {self.store.root}"
            )
        return self.store.root / norm

    def write_parquet(self, frame: pl.DataFrame | pl.LazyFrame, rel: str) -> None:
        with atomic.replacing(self._target(rel)) as tmp:
            if isinstance(frame, pl.LazyFrame):
                frame.sink_parquet(tmp, compression="zstd", statistics=True)
            else:
                frame.write_parquet(tmp, compression="zstd", statistics=True)

    def write_parquet_parts(self, parts: Iterable[pl.DataFrame], rel: str) -> int:
        """One Parquet file written a frame at a time (each a row group or more): a table
        too large to hold whole (`features.ingest.buckets`). Returns the rows written."""
        rows = 0
        with atomic.replacing(self._target(rel)) as tmp:
            writer: pq.ParquetWriter | None = None
            try:
                for frame in parts:
                    table = frame.to_arrow()
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
                    writer.write_table(table.cast(writer.schema))
                    rows += frame.height
            finally:
                if writer is not None:
                    writer.close()
            if writer is None:
                raise StoreError(f"{rel}: no part to write")
        return rows

    def write_json(self, payload: dict[str, Any], rel: str) -> None:
        text = json.dumps(payload, indent=2, sort_keys=False, default=str)
        atomic.write_text(self._target(rel), text)

    def commit(self, new_state: StoreState) -> None:
        atomic.write_text(self.store.state_path, json.dumps(new_state.to_json(), indent=2))
        # Files of the state just replaced stay one generation longer, so a reader that loaded
        # the previous state.json a moment before this commit can still finish its scan.
        self._collect_garbage(new_state, self.base)

    def _collect_garbage(self, *keep: StoreState) -> None:
        referenced: set[str] = set()
        for state in keep:
            referenced.update(state.referenced_files())
        for sub in ("tables", "quarantine", "reports"):
            folder = self.store.root / sub
            if not folder.exists():
                continue
            for path in folder.rglob("*"):
                rel = path.relative_to(self.store.root).as_posix()
                if path.is_file() and rel not in referenced:
                    path.unlink()
