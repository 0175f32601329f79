"""The erasure tombstone filter's cost at 1M person ids (issue 13, section 3): 2M rows of 1M
persons, 100 erased, filtered by keyed pseudonym (`features.store.tombstones`), a second table
of the same persons (ids already checked), and the old filter on ids in clear for comparison.

    nice -n 10 .venv/bin/python experiments/bench_tombstone_filter.py
"""

from __future__ import annotations

import time

import polars as pl

from features.store.tombstones import ErasedPersons, KeyedHasher, drop_erased


def main(n: int = 1_000_000) -> None:
    key = b"bench-key"
    ids = [f"P{i:07d}" for i in range(n)]
    hasher = KeyedHasher(key)
    gone = ids[:: max(1, n // 100)]
    frame = pl.LazyFrame({"person_id": ids * 2, "x": list(range(2 * n))})
    erased = ErasedPersons(hasher.many(gone), key)
    started = time.perf_counter()
    kept = drop_erased(frame, erased).collect()
    first = time.perf_counter() - started
    started = time.perf_counter()
    drop_erased(frame, erased).collect()
    second = time.perf_counter() - started
    started = time.perf_counter()
    clear = drop_erased(frame, frozenset(gone)).collect()
    plain = time.perf_counter() - started
    assert kept.equals(clear)
    print(
        f"{2 * n} rows of {n} persons, {len(gone)} erased, kept {kept.height}: "
        f"pseudonym filter {first:.2f} s (first table), {second:.2f} s (next table, ids "
        f"already checked); filter on ids in clear {plain:.2f} s"
    )


if __name__ == "__main__":
    main()
