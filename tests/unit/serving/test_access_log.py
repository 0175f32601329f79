"""The access log on SQLite: entries, filters, keyed chain and anchors (tamper detection),
triggers, concurrency, writes committed with their entries (`append_with`), CLI."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from riskcast.chain import GENESIS, HashChain, entry_hash, plain_hash
from riskcast.errors import ConfigError, InputError, StoreError
from riskcast.settings import Settings, get_settings
from serving.access_log import AccessLog, AccessLogEntry, open_access_log, same_database
from serving.cli import build_app
from tests.ledger_checks import KEY, OTHER_KEY, anchor_lines, delete_newest, drop_triggers, rehash


def fill(log: AccessLog, n: int = 5) -> list[AccessLogEntry]:
    out = []
    for i in range(n):
        out.append(
            log.append(
                actor=f"officer{i % 2}",
                role="officer",
                purpose="case review",
                action="scores" if i % 2 == 0 else "risk-list",
                persons=[f"p{i}", f"p{i + 2}"] if i % 2 == 0 else [],
                params={} if i % 2 == 0 else {"region": "Nord", "page": i, "tier": ["high"]},
                model_version="7" if i < 4 else None,
                status=200 if i != 3 else 403,
            )
        )
    return out


def raw(log: AccessLog, statement: str) -> None:
    with log.engine.begin() as conn:
        conn.execute(sa.text(statement))


def opened(tmp_path: Path, key: bytes = KEY) -> AccessLog:
    return AccessLog(
        f"sqlite:///{tmp_path / 'riskcast.sqlite'}", key=key, anchor_dir=tmp_path / "anchors"
    )


@pytest.fixture
def log(tmp_path: Path) -> Iterator[AccessLog]:
    store = opened(tmp_path)
    yield store
    store.dispose()


def test_append_and_verify(log: AccessLog) -> None:
    assert log.entries() == [] and log.verify().ok and log.verify().head is None
    appended = fill(log, 5)
    entries = log.entries()
    assert entries == appended
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS
    for before, after in pairwise(entries):
        assert after.prev_hash == before.hash and after.at >= before.at
    stored = log.chain.entries(sa.select(log.table).order_by(log.table.c.seq))
    for e in stored:  # what is hashed: the persons' pseudonyms, never their ids
        assert e.hash == entry_hash(e.model_dump(), KEY)
        assert e.at.utcoffset() == timedelta(0)
        assert all(p.startswith("psn:") for p in e.persons)
    assert [log.pseudonyms.of(p) for p in ("p0", "p2")] == stored[0].persons
    assert entries[0].persons == ["p0", "p2"] and entries[0].params == {}
    assert entries[1].params == {"region": "Nord", "page": 1, "tier": ["high"]}
    assert entries[3].status == 403 and entries[4].model_version is None
    result = log.verify()
    assert (result.ok, result.entries, result.head, result.problems) == (
        True,
        5,
        entries[-1].hash,
        [],
    )
    assert result.anchored == 5 and anchor_lines(log)[-1] == f"5 {entries[-1].hash}"


def test_filters(log: AccessLog) -> None:
    fill(log, 5)
    assert [e.seq for e in log.entries(actor="officer1")] == [2, 4]
    assert [e.seq for e in log.entries(person="p0")] == [1]
    assert [e.seq for e in log.entries(person="p2")] == [1, 3]
    assert log.entries(person="p") == [] and log.entries(person="P2") == []
    assert [e.seq for e in log.entries(limit=2)] == [4, 5]
    assert [e.seq for e in log.entries(person="p2", limit=1)] == [3]
    assert [e.seq for e in log.entries(actor="officer0", limit=2)] == [3, 5]
    assert log.entries(limit=0) == []
    third = log.entries()[2]
    assert [e.seq for e in log.entries(since=third.at)] == [3, 4, 5]
    naive = third.at.astimezone(UTC).replace(tzinfo=None)
    assert [e.seq for e in log.entries(since=naive)] == [3, 4, 5]
    assert log.entries(since=datetime.now(UTC) + timedelta(hours=1)) == []
    with pytest.raises(InputError, match="limit"):
        log.entries(limit=-1)


def test_awkward_person_ids_and_params(log: AccessLog) -> None:
    ids = ['a"b', "50%_x", "back\\slash", "Ærø"]
    log.append(
        actor="a",
        role="auditor",
        purpose="",
        action="scores",
        persons=ids,
        params={"as_of": date(2024, 1, 2), "n": 1.5},
        model_version=None,
        status=422,
    )
    for person in ids:
        assert [e.seq for e in log.entries(person=person)] == [1], person
    assert log.entries(person="50%") == [] and log.entries(person="50__x") == []
    assert log.entries()[0].params == {"as_of": "2024-01-02", "n": 1.5}
    assert log.verify().ok


def test_invalid_entries_write_nothing(log: AccessLog) -> None:
    base = {
        "actor": "a",
        "role": "officer",
        "purpose": "p",
        "action": "scores",
        "persons": ["x"],
        "params": {},
        "model_version": "1",
        "status": 200,
    }
    for bad, match in (
        ({"actor": ""}, "actor"),
        ({"status": 42}, "status"),
        ({"params": {"x": object()}}, "params"),
        ({"params": {"x": float("nan")}}, "params"),
    ):
        with pytest.raises(InputError, match=match):
            log.append(**(base | bad))  # type: ignore[arg-type]
    without_status = {k: v for k, v in base.items() if k != "status"}
    for wrong, match in (
        (base | {"reason": "x"}, "reason"),
        (without_status, "missing status"),
    ):
        with pytest.raises(InputError, match=match):
            log.append(**wrong)  # type: ignore[arg-type]
    assert log.entries() == [] and log.verify().ok


def test_triggers_block_update_and_delete(log: AccessLog) -> None:
    fill(log, 3)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        raw(log, "UPDATE access_log SET status = 200 WHERE seq = 2")
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        raw(log, "DELETE FROM access_log WHERE seq = 2")
    assert log.verify().ok


def test_edited_entry_is_detected(log: AccessLog) -> None:
    fill(log, 5)
    drop_triggers(log)
    raw(log, "UPDATE access_log SET persons = '[\"someone-else\"]' WHERE seq = 3")
    result = log.verify()
    assert not result.ok and result.entries == 5
    assert len(result.problems) == 1 and result.problems[0].startswith("seq 3: content edited")


def test_rehashed_edit_is_detected(log: AccessLog) -> None:
    fill(log, 4)
    drop_triggers(log)
    forged = log.entries()[1].model_dump() | {"actor": "nobody"}
    raw(log, f"UPDATE access_log SET actor = 'nobody', hash = '{plain_hash(forged)}' WHERE seq = 2")
    problems = log.verify().problems
    assert [p.split(":")[0] for p in problems] == ["seq 2", "seq 3", "seq 2"], problems
    assert problems[0].startswith("seq 2: hashed without the chain key")
    assert problems[1].startswith("seq 3: chain broken")
    assert "differs from the one anchored when it was committed" in problems[2]


def test_newest_deleted_fails_verify_by_default(log: AccessLog) -> None:
    fill(log, 5)
    delete_newest(log, 2)
    result = log.verify()
    assert not result.ok and result.entries == 3
    assert len(result.problems) == 1
    assert result.problems[0].startswith("seq 4-5: missing at the end (the newest entries deleted)")
    assert result.problems[0].endswith("the access log ends at seq 3")


def test_edit_and_plain_rehash_of_the_rest_fails_verify(log: AccessLog) -> None:
    fill(log, 5)
    drop_triggers(log)
    rehash(log, {"purpose": "curiosity"}, 2, plain_hash)
    rows = log.entries()
    assert [r.prev_hash for r in rows[1:]] == [r.hash for r in rows[:-1]]  # links consistent
    problems = log.verify().problems
    assert [p.split(":")[0] for p in problems] == ["seq 2", "seq 3", "seq 4", "seq 5"] * 2
    assert all("hashed without the chain key" in p for p in problems[:4])
    assert all("differs from the one anchored" in p for p in problems[4:])


def test_wrong_key_fails_verify_and_refuses_appends(log: AccessLog, tmp_path: Path) -> None:
    fill(log, 3)
    wrong = opened(tmp_path, key=OTHER_KEY)
    result = wrong.verify()
    assert not result.ok
    assert result.problems[0].startswith("seq 1-3: no entry carries this chain key's HMAC")
    with pytest.raises(StoreError, match="does not carry this chain key's HMAC"):
        fill(wrong, 1)
    wrong.dispose()
    assert log.verify().ok and len(log.entries()) == 3


def test_an_old_unkeyed_chain_is_refused_clearly(log: AccessLog) -> None:
    """A log written before chain keys (plain sha256): verify says so in one line, and
    nothing is appended to it (the documented clean break: recreate it)."""
    fill(log, 3)
    drop_triggers(log)
    rehash(log, {}, 1, plain_hash)  # what riskcast wrote before chain keys
    problems = log.verify().problems
    assert problems[0].startswith("seq 1-3: no entry carries this chain key's HMAC (3 of 3 are")
    assert "before chain keys" in problems[0]
    with pytest.raises(StoreError, match="before chain keys"):
        fill(log, 1)


def test_unreadable_entry_is_reported(log: AccessLog) -> None:
    fill(log, 2)
    drop_triggers(log)
    raw(log, "UPDATE access_log SET params = 'not json' WHERE seq = 2")
    assert log.verify().problems[0].startswith("seq 2: content edited (unreadable")
    with pytest.raises(StoreError, match="riskcast access-log verify"):
        log.entries()


def test_deleted_entry_is_detected(log: AccessLog) -> None:
    fill(log, 5)
    head = log.verify().head
    drop_triggers(log)
    raw(log, "DELETE FROM access_log WHERE seq = 3")
    result = log.verify()
    assert not result.ok and result.entries == 4
    assert result.problems[0].startswith("seq 3: missing"), result.problems
    assert result.problems[1].startswith("seq 4: chain broken"), result.problems
    raw(log, "DELETE FROM access_log WHERE seq = 5")  # the newest: the anchors show it
    assert log.verify().problems[-1].startswith("seq 5: missing at the end")
    problems = log.verify(head=head).problems
    assert any(p.startswith("head ") and "access log" in p for p in problems)


def test_concurrent_appends_keep_one_chain(tmp_path: Path) -> None:
    writers = [opened(tmp_path) for _ in range(3)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(writers) * 2)

    def write(log: AccessLog, name: str) -> None:
        try:
            start.wait()
            for i in range(10):
                log.append(
                    actor=name,
                    role="officer",
                    purpose="p",
                    action="scores",
                    persons=[f"{name}-{i}"],
                    params={},
                    model_version="1",
                    status=200,
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    # two threads per AccessLog (as the service's request threads) and three engines
    threads = [
        threading.Thread(target=write, args=(w, f"{k}{j}"))
        for k, w in enumerate(writers)
        for j in "ab"
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    entries = writers[0].entries()
    assert [e.seq for e in entries] == list(range(1, 61))
    result = writers[1].verify()
    assert result.ok and result.anchored == 60
    for writer in writers:
        writer.dispose()


def test_shares_the_database_and_the_anchor_directory_with_the_ledger(tmp_path: Path) -> None:
    from fairness.ledger import open_ledger

    settings = Settings(home=tmp_path / "home", database_url=None)
    ledger = open_ledger(settings)
    ledger.append("audit", actor="a", role="r", version="v1", decision="pass", reasons=[])
    log = open_access_log(settings)
    fill(log, 2)
    assert (tmp_path / "home" / "riskcast.sqlite").is_file()
    assert ledger.verify().ok and log.verify().ok
    assert log.where == ledger.where
    names = sorted(p.name.split("-")[0] for p in (tmp_path / "home" / "anchors").iterdir())
    assert names == ["access_log", "ledger_entries"]
    ledger.dispose()
    log.dispose()


def test_url_and_schema_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="RISKCAST_DATABASE_URL") as caught:
        open_access_log(Settings(home=tmp_path, database_url="nosuchdb://me:s3cret@host/db"))
    assert "s3cret" not in str(caught.value)
    with pytest.raises(InputError, match="schema"):
        open_access_log(Settings(home=tmp_path, database_url=None), schema="x")


def test_chain_refuses_a_model_that_does_not_match_its_columns(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fields must be exactly"):
        HashChain(
            f"sqlite:///{tmp_path / 'x.sqlite'}",
            table="x",
            columns={"actor": sa.Text()},
            model=AccessLogEntry,
            key=KEY,
            anchor_dir=None,
        )


# ---- CLI -------------------------------------------------------------------------------------
@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    monkeypatch.setenv("RISKCAST_HOME", str(home))
    monkeypatch.delenv("RISKCAST_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


def test_cli_show_and_verify(home: Path) -> None:
    log = open_access_log()
    fill(log, 5)
    head = log.verify().head
    runner = CliRunner()
    app = build_app()

    shown = runner.invoke(app, ["access-log", "show", "--json", "--actor", "officer1"])
    assert shown.exit_code == 0, shown.output
    rows = json.loads(shown.stdout)
    assert [r["seq"] for r in rows] == [2, 4]
    assert rows[0]["params"] == {"page": 1, "region": "Nord", "tier": ["high"]}

    by_person = runner.invoke(app, ["access-log", "show", "--json", "--person", "p2"])
    assert [r["seq"] for r in json.loads(by_person.stdout)] == [1, 3]
    limited = runner.invoke(app, ["access-log", "show", "--json", "--limit", "1"])
    assert [r["seq"] for r in json.loads(limited.stdout)] == [5]

    table = runner.invoke(app, ["access-log", "show", "--person", "p6"])
    assert table.exit_code == 0, table.output
    assert "access log: 1 entries" in table.stdout and "p6" in table.stdout

    verified = runner.invoke(app, ["access-log", "verify", "--head", str(head)])
    assert verified.exit_code == 0, verified.output
    assert log.chain.anchors is not None
    assert verified.stdout.strip() == (
        f"access log intact: 5 entries, head {head}, anchored through seq 5 in "
        f"{log.chain.anchors.path}"
    )

    drop_triggers(log)
    raw(log, "UPDATE access_log SET purpose = 'curiosity' WHERE seq = 2")
    raw(log, "DELETE FROM access_log WHERE seq = 4")
    log.dispose()
    broken = runner.invoke(app, ["access-log", "verify"])
    assert broken.exit_code == 1
    assert "access log NOT intact" in broken.stderr
    assert "seq 2: content edited" in broken.stderr
    assert "seq 4: missing" in broken.stderr
    assert "seq 5: chain broken" in broken.stderr


def test_cli_verify_finds_the_newest_deleted_without_a_head(home: Path) -> None:
    log = open_access_log()
    fill(log, 3)
    delete_newest(log, 1)
    log.dispose()
    broken = CliRunner().invoke(build_app(), ["access-log", "verify"])
    assert broken.exit_code == 1
    assert "seq 3: missing at the end (the newest entries deleted)" in broken.stderr


def test_cli_empty(home: Path) -> None:
    runner = CliRunner()
    app = build_app()
    empty = runner.invoke(app, ["access-log", "show", "--json"])
    assert empty.exit_code == 0 and json.loads(empty.stdout) == []
    verified = runner.invoke(app, ["access-log", "verify"])
    assert verified.exit_code == 0
    assert verified.stdout.strip() == "access log intact: 0 entries, head none"


def test_group_commit_shares_transactions_and_loses_nothing(tmp_path: Path) -> None:
    log = opened(tmp_path)
    log.group_commit()
    commits: list[int] = []
    real = log.chain.append_batch

    def counting(items: Any) -> Any:
        commits.append(len(items))
        return real(items)

    log.chain.append_batch = counting  # type: ignore[method-assign]
    start = threading.Barrier(8)
    got: dict[str, AccessLogEntry] = {}

    def request(name: str) -> None:
        start.wait()
        for i in range(15):
            got[f"{name}-{i}"] = log.append(
                actor=name,
                role="officer",
                purpose="p",
                action="scores",
                persons=[f"{name}-{i}"],
                params={"i": i},
                model_version="1",
                status=200,
            )

    threads = [threading.Thread(target=request, args=(f"t{k}",)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    entries = log.entries()
    assert [e.seq for e in entries] == list(range(1, 121))
    assert log.verify().ok
    assert sum(commits) == 120
    assert len(anchor_lines(log)) <= len(commits) + 1  # one anchor per commit (+ the genesis)
    # each caller got back exactly its own committed entry
    assert {k: e.persons[0] for k, e in got.items()} == {k: k for k in got}
    assert {e.hash for e in got.values()} == {e.hash for e in entries}
    log.dispose()


def test_group_commit_refuses_only_the_bad_entry(tmp_path: Path) -> None:
    log = opened(tmp_path)
    log.group_commit()
    assert log._writer is not None
    good = log.payload(
        actor="a",
        role="officer",
        purpose="p",
        action="scores",
        persons=["x"],
        params={},
        model_version="1",
        status=200,
    )
    bad = good | {"status": 42}  # not an HTTP status
    log._writer._commit(
        batch := [_pending(good), _pending(bad), _pending(good | {"persons": ["y"]})]
    )
    assert [p.error is None for p in batch] == [True, False, True]
    assert isinstance(batch[1].error, InputError)
    assert [e.persons for e in log.entries()] == [["x"], ["y"]]
    assert log.verify().ok
    log.dispose()
    with pytest.raises(StoreError, match="closed"):
        log._writer.append(good)


def _pending(payload: dict[str, Any]) -> Any:
    from serving.access_log import _Pending

    return _Pending(payload)


def test_group_commit_after_close_and_a_stuck_database_fail_clearly(tmp_path: Path) -> None:
    import time as _time

    log = opened(tmp_path)
    log.group_commit()
    writer = log._writer
    assert writer is not None
    payload = log.payload(
        actor="a",
        role="officer",
        purpose="p",
        action="scores",
        persons=["x"],
        params={},
        model_version="1",
        status=200,
    )
    real = log.chain.append_batch
    log.chain.append_batch = lambda p: (_time.sleep(0.5), real(p))[1]  # type: ignore[method-assign]
    writer.timeout = 0.1
    with pytest.raises(StoreError, match="did not commit within"):
        writer.append(payload)
    log.dispose()
    with pytest.raises(StoreError, match="closed"):
        writer.append(payload)


# ---- writes committed with their entries (append_with) ----------------------------------------
SIDE = sa.Table(
    "side_writes",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("value", sa.Text, nullable=False),
)
ENTRY: dict[str, Any] = {
    "actor": "a",
    "role": "officer",
    "purpose": "p",
    "action": "decision",
    "persons": ["x"],
    "params": {},
    "model_version": "1",
    "status": 201,
}


def _side(log: AccessLog) -> list[str]:
    SIDE.create(log.engine, checkfirst=True)
    with log.engine.connect() as conn:
        return list(conn.execute(sa.select(SIDE.c.value).order_by(SIDE.c.id)).scalars())


def _write(value: str, fail: bool = False) -> Any:
    def along(conn: sa.Connection) -> int:
        new = conn.execute(sa.insert(SIDE).values(value=value)).inserted_primary_key[0]
        if fail:
            raise RuntimeError(f"{value} failed after writing")
        return int(new)

    return along


@pytest.mark.parametrize("grouped", [False, True])
def test_append_with_commits_the_write_with_its_entry(log: AccessLog, grouped: bool) -> None:
    assert _side(log) == []
    if grouped:
        log.group_commit()
    entry, first = log.append_with(_write("one"), **ENTRY)
    _, second = log.append_with(_write("two"), **ENTRY | {"persons": ["y"]})
    assert (first, second) == (1, 2)  # the ids of the rows written
    assert _side(log) == ["one", "two"]
    assert [e.persons for e in log.entries()] == [["x"], ["y"]] and log.entries()[0] == entry
    assert log.verify().ok


@pytest.mark.parametrize("grouped", [False, True])
def test_a_failing_log_write_rolls_the_write_back(log: AccessLog, grouped: bool) -> None:
    """The access-log insert fails (injected in the database, after the caller's write ran in
    the same transaction): the caller gets the error and neither is stored."""
    assert _side(log) == []
    fill(log, 1)
    if grouped:
        log.group_commit()
    raw(
        log,
        "CREATE TRIGGER broken_log BEFORE INSERT ON access_log "
        "BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    )
    with pytest.raises(StoreError, match="injected failure"):
        log.append_with(_write("lost"), **ENTRY)
    assert _side(log) == [] and len(log.entries()) == 1
    raw(log, "DROP TRIGGER broken_log")
    log.append_with(_write("kept"), **ENTRY)
    assert _side(log) == ["kept"] and len(log.entries()) == 2 and log.verify().ok


def test_a_failing_write_fails_only_its_own_entry_in_a_batch(log: AccessLog) -> None:
    from serving.access_log import _Pending

    assert _side(log) == []
    log.group_commit()
    assert log._writer is not None
    payload = log.payload(**ENTRY)
    batch = [
        _Pending(payload | {"persons": [name]}, _write(name, fail=name == "b"))
        for name in ("a", "b", "c")
    ]
    log._writer._commit(batch)
    assert [p.error is None for p in batch] == [True, False, True]
    assert isinstance(batch[1].error, StoreError) and "b failed" in str(batch[1].error)
    assert _side(log) == ["a", "c"]  # b's row, written before it failed, was undone
    assert [e.persons for e in log.entries()] == [["a"], ["c"]] and log.verify().ok


def test_same_database_refuses_two_databases(log: AccessLog, tmp_path: Path) -> None:
    same = sa.create_engine(log.engine.url)
    other = sa.create_engine(f"sqlite:///{tmp_path / 'other.sqlite'}")
    same_database(same, log)
    with pytest.raises(ConfigError, match="decisions are committed with their access-log"):
        same_database(other, log)
    same.dispose()
    other.dispose()


def test_a_long_rehashed_run_is_one_line(log: AccessLog) -> None:
    fill(log, 15)
    drop_triggers(log)
    rehash(log, {"purpose": "curiosity"}, 2, plain_hash)
    problems = log.verify().problems
    assert problems[0] == (
        "seq 2-15: hashed without the chain key (re-hashed by someone who does not hold "
        "RISKCAST_CHAIN_KEY, or written before chain keys) (14 entries)"
    )
    assert len(problems) == 1 + 10 + 1  # and the anchors: 10 seqs listed, then "and 4 more"
    assert problems[-1] == "… and 4 more anchored seqs differ"


def test_a_copied_home_still_verifies(tmp_path: Path) -> None:
    """The anchor file of a SQLite log is named by the database file's name, not its path:
    a home copied (a backup, the tests' copies) verifies before anything is appended."""
    import shutil

    first = tmp_path / "first"
    log = open_access_log(Settings(home=first, database_url=None))
    fill(log, 3)
    log.dispose()
    shutil.copytree(first, tmp_path / "copy")
    copy = open_access_log(Settings(home=tmp_path / "copy", database_url=None))
    result = copy.verify()
    assert result.ok and result.anchored == 3, result.problems
    copy.dispose()
