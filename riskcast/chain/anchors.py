"""Anchors: a chain's committed heads, appended to a file the database's user cannot rewrite.

Deleting the newest entries of a hash chain leaves a shorter chain that is valid, and the
chain key does not help (nothing is re-hashed). So every process that appends also writes the
head it committed to an append-only file outside the database, one line ``<seq> <hash>`` per
commit (``O_APPEND``, then ``fsync``), and `HashChain.verify` compares the table with it: an
anchored seq the table no longer reaches, or a different hash at an anchored seq, is tampering.

The file is per database location and table (``<schema>.<table>-<digest>.heads``; the digest
covers backend, host, port, database, URL options such as the search path, schema and table,
not the user or password; for SQLite the file's name), so one home serving several databases
(the tests' shared home with SQLite and PostgreSQL schemas, a CLI pointed elsewhere) never mixes
their heads.

Guarantee (with `HashChain.append_batch`): an anchor is written only for a head that is
committed, either by the writer right after its commit returned or, under the writers' lock, by
the next writer for the head it read. The next writer writes it (and fsyncs) *before* it
commits, and refuses to commit if it cannot. Hence, at every moment, every committed entry but
those of the newest commit (one transaction: one entry, or one group-commit batch) is durably
anchored, and no anchor ever names an uncommitted state: a false alarm needs the database to
lose a commit it acknowledged (e.g. a restore from backup, after which the anchor file must be
archived and started afresh).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

_LINE = re.compile(r"^(\d+) ([0-9a-f]{64})$")
_TAIL = 4096  # bytes read to find the newest anchors: lines are out of order only by races


def location(url: sa.URL, schema: str | None, table: str) -> str:
    """Where a chain lives, independent of who connects: backend, host, port, database, URL
    options (e.g. a search path), schema and table. SQLite: the database file's name only, so
    that a home moved or copied with its anchors (a backup, the tests' copies) still verifies."""
    backend = url.get_backend_name()
    if backend == "sqlite":
        return f"sqlite:{Path(url.database or ':memory:').name} {table}"
    query = "&".join(f"{k}={v}" for k, v in sorted(url.query.items()))
    where = f"{backend}://{url.host or ''}:{url.port or ''}/{url.database or ''}"
    return f"{where}{'?' + query if query else ''} {schema or ''}.{table}"


def anchor_path(directory: Path, url: sa.URL, schema: str | None, table: str) -> Path:
    """The anchor file of one chain in ``directory``."""
    digest = hashlib.sha256(location(url, schema, table).encode()).hexdigest()[:16]
    return directory / f"{schema + '.' if schema else ''}{table}-{digest}.heads"


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str


class Anchors:
    """The append-only head file of one chain; safe from many threads and processes."""

    def __init__(self, path: Path, where: str) -> None:
        self.path, self.where = path, where
        self._known = -1  # the newest seq this process knows to be durably anchored
        self._lock = threading.Lock()

    def record(self, seq: int, hash: str) -> None:
        """Append ``seq hash`` and fsync it (after a commit, or for a head read under the
        writers' lock); `OSError` if the file cannot be written."""
        with self._lock:
            self._write(f"{seq} {hash}\n")
            self._known = max(self._known, seq)

    def cover(self, seq: int, hash: str) -> None:
        """Make sure a head at ``seq`` or later is durably anchored, writing ``seq hash`` if no
        anchor that new is in the file: called under the writers' lock, before committing, for
        the head just read (committed by a writer that may have died before anchoring it)."""
        with self._lock:
            if seq <= self._known:
                return
            newest = self._newest_in_tail()
            if newest is not None and newest >= seq:
                self._sync()  # another process wrote it; make sure it is on disk
                self._known = newest
                return
            self._write(f"{seq} {hash}\n")
            self._known = seq

    def read(self) -> list[Anchor] | None:
        """Every anchor in the file (None if there is no file). Lines that do not parse (a
        torn last line after a crash) are skipped: they can only hide nothing, as every commit
        is anchored again by the next append."""
        try:
            text = self.path.read_text("utf-8", errors="replace")
        except FileNotFoundError:
            return None
        anchors = []
        for line in text.splitlines():
            match = _LINE.match(line)
            if match:
                anchors.append(Anchor(int(match.group(1)), match.group(2)))
        return anchors

    # ---- files --------------------------------------------------------------------------------
    def _write(self, line: str) -> None:
        created = not self.path.exists()
        if created:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            if created and os.fstat(fd).st_size == 0:
                line = f"# riskcast chain heads of {self.where}: <seq> <hash> per commit\n{line}"
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:  # the new file's name must survive a crash too
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def _sync(self) -> None:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _newest_in_tail(self) -> int | None:
        try:
            with self.path.open("rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - _TAIL))
                lines = f.read().decode("utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return None
        if size > _TAIL:
            lines = lines[1:]  # begins inside a line
        seqs = [int(m.group(1)) for m in map(_LINE.match, lines) if m]
        return max(seqs, default=None)
