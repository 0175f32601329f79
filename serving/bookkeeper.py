"""Keeps the score book in step with the champion and the online store's materialisation.

The book is built in a background thread (startup must not wait for a nation to be scored);
until it is ready, or while a new materialisation is being scored, requests are scored
directly. A new materialisation is noticed within ``check_seconds``.

With ``RISKCAST_DASK_SCHEDULER`` set, each build opens a Dask session (`riskcast.cluster`) in
its thread and the book is scored and explained partition by partition on the workers
(`serving.scorebook.per_person`), then gathered here. A cluster that cannot be reached or
loses a worker too often fails the build whole: nothing half-built is published, the failure
is shown in `status`, requests are scored directly meanwhile, and the next check retries. A
book is never kept across materialisations (its scores would not be the store's, and an
erased person would stay listed), so a failing cluster never serves stale scores either.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

import polars as pl

from features.frames.scope import PopulationScope, split_scope
from riskcast import cluster
from serving.scorebook import ScoreBook, build_scorebook
from training.model import RiskModel

log = logging.getLogger("riskcast.serving")


class MaterializationSource(Protocol):
    def get_vectors(self, ids: list[str]) -> pl.DataFrame: ...

    def get_columns(self, columns: list[str], ids: list[str] | None = None) -> pl.DataFrame: ...

    def current(self) -> object | None: ...


def population_vectors(
    store: MaterializationSource, ids: list[str], scope: PopulationScope | None
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """The vectors of the persons of ``ids`` inside ``scope``, and the ids of those outside.

    The scope is decided on a narrow read (key, ``as_of``, the scope columns) of everyone;
    only the population's vectors are then loaded whole. A nation's store holds ten to
    thirty times more persons than a ``with_record`` model may score: loading every vector
    first held 11.5 GB at 10M persons for a 0.2 GB book (`experiments/bench_nation.py`)."""
    if scope is None:
        return store.get_vectors(ids), None
    members = store.get_columns(["as_of", *scope.required_columns()])
    members = members.join(
        pl.DataFrame({"person_id": ids}, schema={"person_id": pl.String()}),
        on="person_id",
        how="semi",
    )
    inside, outside = split_scope(members, scope)
    return store.get_vectors(inside["person_id"].to_list()), outside


def materialization_key(current: object | None) -> str | None:
    if current is None:
        return None
    as_of, written_at = getattr(current, "as_of", None), getattr(current, "written_at", None)
    return f"{as_of}@{written_at}"


class BookKeeper:
    def __init__(
        self,
        model: RiskModel,
        model_version: str,
        scope: PopulationScope | None,
        store: MaterializationSource,
        directory: pl.DataFrame,
        *,
        check_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        cluster_session: Callable[
            [], AbstractContextManager[cluster.Session | None]
        ] = cluster.session,
    ) -> None:
        """``cluster_session``: opens the Dask session of one build (or None: in this
        process); by default from ``RISKCAST_DASK_SCHEDULER`` as it is when the build starts."""
        self.model, self.model_version, self.scope = model, model_version, scope
        self.store, self.directory = store, directory
        self.check_seconds, self.clock = check_seconds, clock
        self.cluster_session = cluster_session
        self._book: ScoreBook | None = None
        self._key: str | None = None
        self._checked = float("-inf")
        self._building: threading.Thread | None = None
        self._lock = threading.Lock()
        self.error: str | None = None
        self.progress = (0, 0)

    @property
    def status(self) -> str:
        if self._book is not None:
            book = self._book
            return (
                f"ready ({book.size} persons in the population, {book.outside} outside, "
                f"{book.method})"
            )
        if self.error:
            return f"failed: {self.error}"
        done, total = self.progress
        return f"building ({done}/{total} rows scored)" if total else "building"

    def book(self) -> ScoreBook | None:
        """The book if it matches the current materialisation (else None; a rebuild starts).

        Checked at most every ``check_seconds``: a new materialisation drops the book; no book
        and no build running (a failed build, or a build that ended just as the store
        changed) starts one."""
        now = self.clock()
        if now - self._checked >= self.check_seconds:
            self._checked = now
            key = materialization_key(self.store.current())
            with self._lock:
                if key != self._key:
                    self._key, self._book = key, None
                missing = self._book is None and key is not None
            if missing:
                self.start()
        return self._book

    def refresh(self) -> None:
        """Check the store at the next `book` call (an erasure in this process changed it)."""
        self._checked = float("-inf")

    def start(self) -> None:
        with self._lock:
            if self._building is not None and self._building.is_alive():
                return
            self._building = threading.Thread(target=self._build, name="scorebook", daemon=True)
            self._building.start()

    def wait(self, timeout: float | None = None) -> ScoreBook | None:
        """Block until the running build ends (for tests and benchmarks)."""
        thread = self._building
        if thread is not None:
            thread.join(timeout)
        return self._book

    def _build(self) -> None:
        """Build for the store's current materialisation; publish only if it is still current
        when done (else build again)."""
        while True:
            key = materialization_key(self.store.current())
            if key is None:
                return
            started = time.perf_counter()
            try:
                ids = self.directory["person_id"].to_list()
                vectors, outside = population_vectors(self.store, ids, self.scope)
                with self.cluster_session():  # this thread's session: `cluster.current()`
                    book = build_scorebook(
                        self.model,
                        vectors,
                        self.directory,
                        model_version=self.model_version,
                        materialization=key,
                        outside=outside,
                        progress=lambda done, total: setattr(self, "progress", (done, total)),
                    )
                now_key = materialization_key(self.store.current())
            except Exception as exc:  # serve directly meanwhile; the next check retries
                log.exception("building the score book failed")
                self.error = f"{type(exc).__name__}: {exc}"
                return
            if now_key != key:
                continue  # the store moved on while we built
            with self._lock:
                self._key, self._book, self.error = key, book, None
            log.info(
                "score book ready: %d persons in %.1f s (%s)",
                book.size,
                time.perf_counter() - started,
                book.method,
            )
            return
