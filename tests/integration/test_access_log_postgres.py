"""The access log on the real PostgreSQL, in its own schema (dropped after): 4 worker processes
append at once and no entry is lost, their anchors raise no false alarm; writes committed with
their entries are never stored without them; tampering (the newest entries deleted, an entry
edited and the rest re-hashed, the wrong key) is detected."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from riskcast.chain import plain_hash
from riskcast.chain.settings import ChainSettings
from riskcast.errors import StoreError
from riskcast.settings import Settings
from serving.access_log import AccessLog, open_access_log
from tests.integration.conftest import POSTGRES
from tests.ledger_checks import KEY, OTHER_KEY, delete_newest, drop_triggers, rehash

WORKERS = 4
PER_WORKER = 200
pytestmark = pytest.mark.integration


def _open(home: Path, schema: str, key: bytes = KEY) -> AccessLog:
    return open_access_log(
        Settings(home=home, database_url=POSTGRES),
        schema=schema,
        chain=ChainSettings(chain_key=key.decode()),
    )


def _side(schema: str) -> sa.Table:
    """A table of the caller's own writes (as the service's decisions), in the test schema."""
    return sa.Table(
        "side_writes",
        sa.MetaData(schema=schema),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("person", sa.Text, nullable=False, unique=True),
    )


def _worker(url: str, schema: str, anchors: Path, name: str, count: int, start: Any) -> None:
    """One service worker process: its own engine, appending as requests arrive."""
    log = AccessLog(url, key=KEY, anchor_dir=anchors, schema=schema)
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


def test_four_worker_processes_lose_nothing(schema: str, tmp_path: Path) -> None:
    names = [f"w{k}" for k in range(WORKERS)]
    anchors = (tmp_path / "anchors").resolve()
    _run_workers(_worker, [(POSTGRES, schema, anchors, name, PER_WORKER) for name in names])

    log = _open(tmp_path, schema)
    try:
        assert log.dialect == "postgresql"
        result = log.verify()
        assert result.ok, result.problems[:10]
        assert result.entries == WORKERS * PER_WORKER
        assert result.anchored == WORKERS * PER_WORKER  # every process anchored its commits
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


def _fill(log: AccessLog, n: int) -> None:
    for i in range(n):
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


@pytest.fixture
def log(schema: str, tmp_path: Path) -> Iterator[AccessLog]:
    opened = _open(tmp_path, schema)
    yield opened
    opened.dispose()


def test_untouched_log_passes(log: AccessLog) -> None:
    _fill(log, 5)
    result = log.verify()
    assert (result.ok, result.entries, result.anchored) == (True, 5, 5)


def test_newest_deleted_fails_verify_by_default(log: AccessLog) -> None:
    _fill(log, 5)
    delete_newest(log, 2)
    problems = log.verify().problems
    assert len(problems) == 1, problems
    assert problems[0].startswith("seq 4-5: missing at the end (the newest entries deleted)")


def test_edit_and_plain_rehash_of_the_rest_fails_verify(log: AccessLog) -> None:
    _fill(log, 5)
    drop_triggers(log)
    rehash(log, {"purpose": "curiosity"}, 3, plain_hash)
    problems = log.verify().problems
    assert [p.split(":")[0] for p in problems] == ["seq 3", "seq 4", "seq 5"] * 2, problems
    assert all("hashed without the chain key" in p for p in problems[:3])
    assert all("differs from the one anchored" in p for p in problems[3:])


def test_wrong_key_fails_verify(log: AccessLog, schema: str, tmp_path: Path) -> None:
    _fill(log, 3)
    wrong = _open(tmp_path, schema, key=OTHER_KEY)
    try:
        problems = wrong.verify().problems
        assert problems[0].startswith("seq 1-3: no entry carries this chain key's HMAC")
        with pytest.raises(StoreError, match="does not carry this chain key's HMAC"):
            _fill(wrong, 1)
    finally:
        wrong.dispose()


@pytest.mark.parametrize("grouped", [False, True])
def test_writes_with_entries_are_both_or_neither(
    log: AccessLog, schema: str, grouped: bool
) -> None:
    """On PostgreSQL a failed statement aborts the transaction: the caller's write runs in a
    savepoint, so a duplicate key there fails that entry only; a failing entry insert (a
    trigger raising) rolls the caller's write back."""
    side = _side(schema)
    side.create(log.engine)
    if grouped:
        log.group_commit()

    def insert(person: str) -> Any:
        return lambda conn: conn.execute(sa.insert(side).values(person=person))

    entry = {"actor": "a", "role": "officer", "purpose": "p", "action": "decision"}
    entry |= {"params": {}, "model_version": None, "status": 201}
    log.append_with(insert("x"), persons=["x"], **entry)
    with pytest.raises(StoreError, match="neither was written"):
        log.append_with(insert("x"), persons=["x-again"], **entry)  # duplicate person
    t = _target(log)
    _raw(
        log,
        f"CREATE FUNCTION {schema}.broken() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION 'injected failure'; END $$",
    )
    _raw(log, f"CREATE TRIGGER broken BEFORE INSERT ON {t} EXECUTE FUNCTION {schema}.broken()")
    with pytest.raises(StoreError, match="injected failure"):
        log.append_with(insert("y"), persons=["y"], **entry)
    _raw(log, f"DROP TRIGGER broken ON {t}")
    log.append_with(insert("z"), persons=["z"], **entry)
    with log.engine.connect() as conn:
        assert list(conn.execute(sa.select(side.c.person).order_by(side.c.id)).scalars()) == [
            "x",
            "z",
        ]
    assert [e.persons for e in log.entries()] == [["x"], ["z"]]
    assert log.verify().ok


def test_tampering_is_refused_or_detected(log: AccessLog) -> None:
    _fill(log, 5)
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


def _grouped_worker(
    url: str, schema: str, anchors: Path, name: str, threads: int, count: int, start: Any
) -> None:
    """A service worker with group commit on: ``threads`` request threads share commits, each
    request also writing a row of its own in its entry's transaction (as a decision does)."""
    import threading

    log = AccessLog(url, key=KEY, anchor_dir=anchors, schema=schema)
    log.group_commit()
    side = _side(schema)
    errors: list[BaseException] = []

    def requests(t: int) -> None:
        try:
            for i in range(count):
                person = f"{name}-{t}-{i}"
                log.append_with(
                    lambda conn, p=person: conn.execute(sa.insert(side).values(person=p)),
                    actor=name,
                    role="officer",
                    purpose="case review",
                    action="scores",
                    persons=[person],
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


def test_group_commit_in_four_workers_loses_nothing(schema: str, tmp_path: Path) -> None:
    threads, per_thread = 4, 50
    names = [f"g{k}" for k in range(WORKERS)]
    anchors = (tmp_path / "anchors").resolve()
    side = _side(schema)
    admin = sa.create_engine(POSTGRES)
    side.create(admin)
    _run_workers(
        _grouped_worker, [(POSTGRES, schema, anchors, name, threads, per_thread) for name in names]
    )

    log = _open(tmp_path, schema)
    try:
        result = log.verify()
        total = WORKERS * threads * per_thread
        assert result.ok, result.problems[:10]
        assert result.entries == total and result.anchored == total
        with admin.connect() as conn:  # every entry's own write, and no other
            written = set(conn.execute(sa.select(side.c.person)).scalars())
        assert written == {e.persons[0] for e in log.entries()}
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
        admin.dispose()
