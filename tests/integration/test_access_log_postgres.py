"""The access log on the real PostgreSQL, in its own schema (dropped after): 4 worker processes
append at once and no entry is lost; tampering is detected."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa

from features.settings import Settings
from serving.access_log import AccessLog, open_access_log
from tests.integration.conftest import POSTGRES

WORKERS = 4
PER_WORKER = 200
pytestmark = pytest.mark.integration


def _worker(url: str, schema: str, name: str, count: int, start: Any) -> None:
    """One service worker process: its own engine, appending as requests arrive."""
    log = AccessLog(url, schema=schema)
    try:
        start.wait(timeout=60)
        for i in range(count):
            log.append(
                actor=name,
                role="officer",
                purpose="case review",
                action="scores",
                persons=[f"{name}-{i}"],
                params={"worker": name, "i": i},
                model_version="1",
                status=200,
            )
    finally:
        log.dispose()


def _run_workers(target: Any, args: list[tuple[Any, ...]]) -> None:
    """One spawned process per args tuple (a shared start barrier appended); all must exit 0."""
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(len(args))
    procs = [ctx.Process(target=target, args=(*a, start)) for a in args]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=240)
    alive = [p for p in procs if p.is_alive()]
    for proc in alive:  # pragma: no cover - only on a hang
        proc.kill()
    assert not alive, "a worker hung"
    assert [p.exitcode for p in procs] == [0] * len(args)


def test_four_worker_processes_lose_nothing(schema: str) -> None:
    names = [f"w{k}" for k in range(WORKERS)]
    _run_workers(_worker, [(POSTGRES, schema, name, PER_WORKER) for name in names])

    log = open_access_log(Settings(database_url=POSTGRES), schema=schema)
    try:
        assert log.dialect == "postgresql"
        result = log.verify()
        assert result.ok, result.problems[:10]
        assert result.entries == WORKERS * PER_WORKER
        entries = log.entries()
        assert [e.seq for e in entries] == list(range(1, WORKERS * PER_WORKER + 1))
        assert Counter(e.actor for e in entries) == dict.fromkeys(names, PER_WORKER)
        for name in names:  # each worker's entries appear in its own order, none twice
            mine = log.entries(actor=name)
            assert [e.params["i"] for e in mine] == list(range(PER_WORKER))
        assert len({e.hash for e in entries}) == WORKERS * PER_WORKER
        assert len({e.persons[0] for e in entries}) == WORKERS * PER_WORKER
        assert [e.seq for e in log.entries(person="w2-7")] == [
            e.seq for e in entries if e.persons == ["w2-7"]
        ]
    finally:
        log.dispose()


def _target(log: AccessLog) -> str:
    return log.engine.dialect.identifier_preparer.format_table(log.table)


def _raw(log: AccessLog, statement: str) -> None:
    with log.engine.begin() as conn:
        conn.execute(sa.text(statement))


def test_tampering_is_refused_or_detected(schema: str) -> None:
    log = open_access_log(Settings(database_url=POSTGRES), schema=schema)
    try:
        for i in range(5):
            log.append(
                actor="a",
                role="officer",
                purpose="p",
                action="scores",
                persons=[f"p{i}"],
                params={},
                model_version=None,
                status=200,
            )
        t = _target(log)
        for statement in (
            f"UPDATE {t} SET status = 500 WHERE seq = 2",
            f"DELETE FROM {t} WHERE seq = 2",
            f"TRUNCATE {t}",
        ):
            with pytest.raises(sa.exc.DBAPIError, match="append-only"):
                _raw(log, statement)
        _raw(log, f"DROP TRIGGER access_log_no_change ON {t}")
        _raw(log, f"UPDATE {t} SET persons = '[\"p9\"]' WHERE seq = 2")
        _raw(log, f"DELETE FROM {t} WHERE seq = 4")
        problems = log.verify().problems
        assert problems[0].startswith("seq 2: content edited"), problems
        assert problems[1].startswith("seq 4: missing"), problems
        assert problems[2].startswith("seq 5: chain broken"), problems
    finally:
        log.dispose()


def _grouped_worker(url: str, schema: str, name: str, threads: int, count: int, start: Any) -> None:
    """A service worker with group commit on: ``threads`` request threads share commits."""
    import threading

    log = AccessLog(url, schema=schema)
    log.group_commit()
    errors: list[BaseException] = []

    def requests(t: int) -> None:
        try:
            for i in range(count):
                log.append(
                    actor=name,
                    role="officer",
                    purpose="case review",
                    action="scores",
                    persons=[f"{name}-{t}-{i}"],
                    params={"thread": t, "i": i},
                    model_version="1",
                    status=200,
                )
        except BaseException as exc:  # pragma: no cover - fails the worker below
            errors.append(exc)

    try:
        start.wait(timeout=60)
        pool = [threading.Thread(target=requests, args=(t,)) for t in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
    finally:
        log.dispose()
    if errors:
        raise errors[0]


def test_group_commit_in_four_workers_loses_nothing(schema: str) -> None:
    threads, per_thread = 4, 50
    names = [f"g{k}" for k in range(WORKERS)]
    _run_workers(_grouped_worker, [(POSTGRES, schema, name, threads, per_thread) for name in names])

    log = open_access_log(Settings(database_url=POSTGRES), schema=schema)
    try:
        result = log.verify()
        total = WORKERS * threads * per_thread
        assert result.ok, result.problems[:10]
        assert result.entries == total
        entries = log.entries()
        assert [e.seq for e in entries] == list(range(1, total + 1))
        assert len({e.persons[0] for e in entries}) == total
        for name in names:  # each request thread's entries in its own order
            mine = log.entries(actor=name)
            for t in range(threads):
                ours = [e.params["i"] for e in mine if e.params["thread"] == t]
                assert ours == list(range(per_thread))
    finally:
        log.dispose()
