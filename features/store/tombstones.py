"""Erasure tombstones: persons the offline store never reads again, kept as keyed pseudonyms.

Why a tombstone and not a rewrite: the delivered files are the registers' record and are not
rewritten, and every committed table file holds all versions of every row. Instead the store
keeps one small file, ``<home>/store/erasures.parquet`` (``pseudonym``, ``erased_at``), and
every reader of person rows drops the tombstoned persons where the rows are read
(`drop_erased`, a pure filter): `OfflineStore.scan` (and so the service's directory, labels,
training), the point-in-time builder at every as-of, and the ingest, which counts a later
delivery's rows of an erased person as ``erased`` instead of storing them (so a re-delivery
never brings the person back, and rows in = accepted + quarantined + duplicates + erased).

Why pseudonyms: an erased person's id must not stay in clear anywhere riskcast keeps. The file
holds the person's keyed pseudonym (HMAC-SHA256 under the pseudonym key, the same value as in
the access log, `serving.pseudonyms`), and the filter hashes the ids it reads: only the unique
ids of a frame, each once per reader (`ErasedPersons` remembers the ids it has checked), with
the HMAC's inner and outer states computed once. A file written before (``person_id`` in
clear) is rewritten as pseudonyms on its first read.
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

import polars as pl

from riskcast import atomic
from riskcast.errors import StoreError

ERASURES_FILE = "erasures.parquet"
PREFIX = "psn:"
"""The pseudonym form, as `serving.pseudonyms` writes it: ``psn:`` and 32 hex digits."""
SCHEMA: dict[str, pl.DataType] = {
    "pseudonym": pl.String(),
    "erased_at": pl.Datetime("us", "UTC"),
}
_BLOCK = 64  # SHA-256's block size, for HMAC's padded keys


class KeyedHasher:
    """HMAC-SHA256 pseudonyms (``psn:`` + 128 bits, as `serving.pseudonyms.pseudonym`) with
    the padded key's inner and outer states hashed once: about twice as fast per id as
    ``hmac.new`` (the filter hashes up to millions of ids)."""

    def __init__(self, key: bytes) -> None:
        self._key = key  # to rebuild it on a Dask worker (hash states do not pickle)
        padded = (hashlib.sha256(key).digest() if len(key) > _BLOCK else key).ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))

    def __reduce__(self) -> tuple[type[KeyedHasher], tuple[bytes]]:
        return (KeyedHasher, (self._key,))

    def __call__(self, person_id: str) -> str:
        inner = self._inner.copy()
        inner.update(str(person_id).encode("utf-8"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return PREFIX + outer.hexdigest()[:32]

    def many(self, ids: Iterable[str]) -> list[str]:
        return [self(i) for i in ids]


class ErasedPersons(frozenset[str]):
    """The pseudonyms of the erased persons, with the key to recognise their ids.

    A frozenset of pseudonyms (so a caller may test ``if erased`` or pass ``frozenset()`` for
    none); `drop_erased` and `count_erased` hash the ids they meet. The ids checked are
    remembered (``_checked``; the erased ones among them in ``_hits``, in memory only), so a
    build that reads several tables of the same persons hashes each id once."""

    _hasher: KeyedHasher
    _checked: pl.Series
    _hits: set[str]

    def __new__(cls, pseudonyms: Iterable[str], key: bytes) -> Self:
        made = super().__new__(cls, pseudonyms)
        made._hasher = KeyedHasher(key)
        made._checked = pl.Series("id", [], dtype=pl.String)
        made._hits = set()
        return made

    def __reduce__(self) -> tuple[type[ErasedPersons], tuple[tuple[str, ...], bytes]]:
        """Pickled to the Dask workers with the builder's reader: the pseudonyms and the key
        (the cache of checked ids stays behind)."""
        return (type(self), (tuple(self), self._hasher._key))

    def holds(self, person_id: str) -> bool:
        """Whether ``person_id`` is erased."""
        return self._hasher(person_id) in self

    def erased_among(self, ids: pl.Series) -> list[str]:
        """The erased ids among ``ids`` (each unique id hashed once per instance)."""
        unique = ids.cast(pl.String).drop_nulls().unique()
        new = unique.filter(~unique.is_in(self._checked.implode()))
        if new.len():
            hashed = pl.Series(self._hasher.many(new.to_list()), dtype=pl.String)
            known = pl.Series(list(self), dtype=pl.String).implode()
            self._hits.update(new.filter(hashed.is_in(known)).to_list())
            self._checked = pl.concat([self._checked, new.rename("id")])
        return [i for i in unique.to_list() if i in self._hits]


def erasures_path(store_root: Path) -> Path:
    return Path(store_root) / ERASURES_FILE


@contextmanager
def _locked(store_root: Path) -> Iterator[None]:
    """The tombstone file's own lock (blocking): a migration and an addition never interleave."""
    path = erasures_path(store_root).with_suffix(".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read(path: Path) -> pl.DataFrame:
    try:
        return pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise StoreError(f"cannot read the erasure tombstones {path}: {exc}") from exc


def _migrate(store_root: Path, hasher: KeyedHasher) -> pl.DataFrame:
    """Rewrite a tombstone file holding ids in clear (written before pseudonyms) as
    pseudonyms, under the file's lock; the migrated frame."""
    path = erasures_path(store_root)
    with _locked(store_root):
        frame = _read(path)
        if "person_id" not in frame.columns:
            return frame  # another reader migrated it meanwhile
        ids = frame["person_id"].cast(pl.String).to_list()
        migrated = pl.DataFrame(
            {"pseudonym": hasher.many(ids), "erased_at": frame["erased_at"]}, schema=SCHEMA
        ).unique("pseudonym", keep="first", maintain_order=True)
        with atomic.replacing(path) as tmp:
            migrated.write_parquet(tmp)
        return migrated


def pseudonym_key() -> bytes:
    """The access log's pseudonym key (`riskcast.chain.settings`), from the environment."""
    from riskcast.chain.settings import load_chain_settings

    return load_chain_settings().pseudonym_secret


def read_erasures(store_root: Path, key: bytes | None = None) -> pl.DataFrame:
    """Every tombstone (``pseudonym``, ``erased_at``; empty when nobody was erased); a file of
    clear ids is migrated first (``key``: default `pseudonym_key`)."""
    path = erasures_path(store_root)
    if not path.exists():
        return pl.DataFrame(schema=SCHEMA)
    frame = _read(path)
    if "person_id" in frame.columns:
        frame = _migrate(store_root, KeyedHasher(key if key is not None else pseudonym_key()))
    return frame


def erased_ids(store_root: Path, key: bytes | None = None) -> ErasedPersons:
    """The erased persons (their pseudonyms, and the key to recognise their ids)."""
    key = key if key is not None else pseudonym_key()
    return ErasedPersons(read_erasures(store_root, key)["pseudonym"].to_list(), key)


def _erased_in(frame: pl.DataFrame, erased: Collection[str], key: str) -> list[str]:
    if isinstance(erased, ErasedPersons):
        return erased.erased_among(frame[key])
    return list(erased)  # ids in clear, handed in by the caller


def drop_erased(
    frame: pl.LazyFrame, erased: Collection[str], key: str = "person_id"
) -> pl.LazyFrame:
    """``frame`` without the rows of erased persons (itself when nobody was erased).

    ``erased``: `ErasedPersons` (the ids met are hashed, batch by batch, unique ids only), or
    ids in clear. Lazy: nothing is hashed before the frame is collected."""
    if not erased:
        return frame
    if not isinstance(erased, ErasedPersons):
        return frame.filter(~pl.col(key).cast(pl.String).is_in(list(erased)))

    def keep(ids: pl.Series) -> pl.Series:
        return ~ids.cast(pl.String).is_in(erased.erased_among(ids))

    return frame.filter(pl.col(key).map_batches(keep, return_dtype=pl.Boolean))


def count_erased(frame: pl.DataFrame, erased: Collection[str], key: str = "person_id") -> int:
    """How many rows of ``frame`` belong to erased persons."""
    if not erased or frame.height == 0 or key not in frame.columns:
        return 0
    return int(frame[key].cast(pl.String).is_in(_erased_in(frame, erased, key)).sum())


def add_tombstone(
    store_root: Path, person_id: str, at: datetime | None = None, key: bytes | None = None
) -> bool:
    """Record the person's pseudonym (call it under the store's write lock); False if already
    there. ``key``: the pseudonym key (default `pseudonym_key`)."""
    key = key if key is not None else pseudonym_key()
    name = KeyedHasher(key)(person_id)
    read_erasures(store_root, key)  # a file of clear ids is migrated first (its own lock)
    path = erasures_path(store_root)
    with _locked(store_root):
        current = _read(path) if path.exists() else pl.DataFrame(schema=SCHEMA)
        if name in set(current["pseudonym"].to_list()):
            return False
        row = pl.DataFrame(
            {"pseudonym": [name], "erased_at": [at or datetime.now(UTC)]}, schema=SCHEMA
        )
        with atomic.replacing(path) as tmp:
            pl.concat([current, row]).write_parquet(tmp)
    return True
