"""The book keeper: builds in the background, drops a stale book, retries after a failure and
never stays without a book for a materialisation once a build can succeed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl
import pytest

from serving import bookkeeper
from serving.bookkeeper import BookKeeper


@dataclass
class _Current:
    as_of: str
    written_at: str


@dataclass
class _Store:
    key: str | None = "2025-01-01"
    fail: int = 0  # get_vectors fails this many times
    reads: int = 0
    on_read: Any = None

    def current(self) -> _Current | None:
        return None if self.key is None else _Current(self.key, "t")

    def get_vectors(self, ids: list[str]) -> pl.DataFrame:
        self.reads += 1
        if self.on_read is not None:
            self.on_read()
        if self.fail:
            self.fail -= 1
            raise RuntimeError("store unavailable")
        return pl.DataFrame({"person_id": ids})

    def get_columns(self, columns: list[str], ids: list[str] | None = None) -> pl.DataFrame:
        return pl.DataFrame({"person_id": ["a"]})


@dataclass
class _Book:
    materialization: str
    size: int = 1
    method: str = "fake"
    extra: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(autouse=True)
def fake_builder(monkeypatch: pytest.MonkeyPatch) -> None:
    def build(model: Any, vectors: Any, directory: Any, **kw: Any) -> _Book:
        return _Book(kw["materialization"])

    monkeypatch.setattr(bookkeeper, "build_scorebook", build)


def _keeper(store: _Store) -> BookKeeper:
    directory = pl.DataFrame({"person_id": ["a"], "region": ["R"], "district": ["D"]})
    return BookKeeper(object(), "1", None, store, directory, check_seconds=0)  # type: ignore[arg-type]


def test_builds_then_serves_and_drops_a_stale_book() -> None:
    store = _Store()
    keeper = _keeper(store)
    assert keeper.book() is None  # first check starts the build
    book = keeper.wait(10)
    assert book is not None and book.materialization == "2025-01-01@t"
    assert keeper.book() is book
    store.key = "2025-02-01"
    assert keeper.book() is None  # a new materialisation: never the old book
    assert keeper.wait(10).materialization == "2025-02-01@t"  # type: ignore[union-attr]


def test_a_failed_build_is_retried_on_the_next_check() -> None:
    store = _Store(fail=1)
    keeper = _keeper(store)
    keeper.book()
    assert keeper.wait(10) is None and keeper.status.startswith("failed")
    keeper.book()  # same materialisation: retried
    assert keeper.wait(10) is not None and keeper.error is None


def test_a_store_change_during_the_build_is_built_again() -> None:
    store = _Store()

    def move_on() -> None:
        if store.reads == 1:
            store.key = "2025-03-01"

    store.on_read = move_on
    keeper = _keeper(store)
    keeper.book()
    book = keeper.wait(10)
    assert book is not None and book.materialization == "2025-03-01@t"
    assert store.reads == 2


def test_a_build_that_ended_as_the_store_changed_is_restarted() -> None:
    store = _Store()
    keeper = _keeper(store)
    keeper.book()
    keeper.wait(10)
    store.key = "2025-04-01"
    # the old build thread may still look alive: the next check must start one anyway
    keeper.book()
    keeper.wait(10)
    assert keeper.book() is not None
    assert keeper.wait(10).materialization == "2025-04-01@t"  # type: ignore[union-attr]
