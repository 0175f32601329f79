"""The bitemporal offline store: every version of every row, Parquet under ``RISKCAST_HOME``.

Layout (``<home>/store``)::

    state.json                         the committed state; replaced atomically (temp + rename)
    tables/<table>/<seq>-<extract>.parquet   all versions of a table as of that delivery
    quarantine/<extract>/<table>.parquet     rejected rows: original values, rule ids, messages
    reports/<extract>.json             the ingest report of each delivery

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
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from features.contract import TABLES, Table
from features.errors import NotFoundError, StoreError

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
        """All versions of a table; raises NotFoundError if it was never delivered."""
        TABLES[name]  # unknown names fail loudly
        rel = self.state().tables.get(name)
        if rel is None:
            raise NotFoundError(
                f"table {name!r} has not been delivered to the store at {self.root}"
            )
        return pl.scan_parquet(self.root / rel)

    def scan_as_of(self, name: str, as_of: date) -> pl.LazyFrame:
        """The rows of a table as they were known at the end of ``as_of``."""
        return self.scan(name).filter(visible_as_of(TABLES[name], as_of))

    def read_report(self, extract_id: str) -> dict[str, Any]:
        """The ingest report of a committed delivery (a crashed ingest's leftover is not one)."""
        record = next((d for d in self.state().deliveries if d.extract_id == extract_id), None)
        path = self.root / record.report if record is not None else None
        if path is None or not path.exists():
            raise NotFoundError(f"no ingest report for extract {extract_id!r}")
        result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
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

    def table_path(self, name: str, extract_id: str) -> str:
        seq = len(self.base.deliveries) + 1
        return f"tables/{name}/{seq:05d}-{_safe(extract_id)}.parquet"

    def quarantine_path(self, name: str, extract_id: str) -> str:
        return f"quarantine/{_safe(extract_id)}/{name}.parquet"

    def report_path(self, extract_id: str) -> str:
        return f"reports/{_safe(extract_id)}.json"

    def write_parquet(self, frame: pl.DataFrame | pl.LazyFrame, rel: str) -> None:
        path = self.store.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        if isinstance(frame, pl.LazyFrame):
            frame.sink_parquet(tmp, compression="zstd", statistics=True)
        else:
            frame.write_parquet(tmp, compression="zstd", statistics=True)
        _fsync_file(tmp)
        os.replace(tmp, path)

    def write_json(self, payload: dict[str, Any], rel: str) -> None:
        path = self.store.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=False, default=str))

    def commit(self, new_state: StoreState) -> None:
        _atomic_write_text(self.store.state_path, json.dumps(new_state.to_json(), indent=2))
        # Files of the state just replaced stay one generation longer, so a reader that loaded
        # the previous state.json a moment before this commit can still finish its scan.
        self._collect_garbage(new_state, self.base)

    def _collect_garbage(self, *keep: StoreState) -> None:
        referenced: set[str] = set()
        for state in keep:
            referenced.update(state.tables.values())
            referenced.update(p for q in state.quarantine.values() for p in q.values())
            referenced.update(d.report for d in state.deliveries)
        for sub in ("tables", "quarantine", "reports"):
            folder = self.store.root / sub
            if not folder.exists():
                continue
            for path in folder.rglob("*"):
                rel = path.relative_to(self.store.root).as_posix()
                if path.is_file() and rel not in referenced:
                    path.unlink()


def _safe(extract_id: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in extract_id)


def _fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
