"""The access log on SQLite: entries, filters, tamper detection, triggers, concurrency, CLI."""

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

from features.chain import GENESIS, HashChain, entry_hash
from features.errors import InputError, StoreError
from features.settings import Settings, get_settings
from serving.access_log import AccessLog, AccessLogEntry, open_access_log
from serving.cli import build_app


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


def drop_triggers(log: AccessLog) -> None:
    raw(log, "DROP TRIGGER access_log_no_update")
    raw(log, "DROP TRIGGER access_log_no_delete")


@pytest.fixture
def log(tmp_path: Path) -> Iterator[AccessLog]:
    store = AccessLog(f"sqlite:///{tmp_path / 'riskcast.sqlite'}")
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
    for e in entries:
        assert e.hash == entry_hash(e.model_dump())
        assert e.at.utcoffset() == timedelta(0)
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
    raw(log, f"UPDATE access_log SET actor = 'nobody', hash = '{entry_hash(forged)}' WHERE seq = 2")
    problems = log.verify().problems
    assert len(problems) == 1 and problems[0].startswith("seq 3: chain broken"), problems


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
    raw(log, "DELETE FROM access_log WHERE seq = 5")  # the newest: only a recorded head shows it
    assert not any("seq 5" in p for p in log.verify().problems)
    problems = log.verify(head=head).problems
    assert any(p.startswith("head ") and "access log" in p for p in problems)


def test_concurrent_appends_keep_one_chain(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'riskcast.sqlite'}"
    writers = [AccessLog(url) for _ in range(3)]
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
    assert writers[1].verify().ok
    for writer in writers:
        writer.dispose()


def test_shares_the_database_with_the_ledger(tmp_path: Path) -> None:
    from fairness.ledger import open_ledger

    settings = Settings(home=tmp_path / "home", database_url=None)
    ledger = open_ledger(settings)
    ledger.append("audit", actor="a", role="r", version="v1", decision="pass", reasons=[])
    log = open_access_log(settings)
    fill(log, 2)
    assert (tmp_path / "home" / "riskcast.sqlite").is_file()
    assert ledger.verify().ok and log.verify().ok
    assert log.where == ledger.where
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
    assert verified.stdout.strip() == f"access log intact: 5 entries, head {head}"

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


def test_cli_empty(home: Path) -> None:
    runner = CliRunner()
    app = build_app()
    empty = runner.invoke(app, ["access-log", "show", "--json"])
    assert empty.exit_code == 0 and json.loads(empty.stdout) == []
    verified = runner.invoke(app, ["access-log", "verify"])
    assert verified.exit_code == 0
    assert verified.stdout.strip() == "access log intact: 0 entries, head none"


def test_group_commit_shares_transactions_and_loses_nothing(tmp_path: Path) -> None:
    log = AccessLog(f"sqlite:///{tmp_path / 'riskcast.sqlite'}")
    log.group_commit()
    commits: list[int] = []
    real = log.chain.append_many

    def counting(payloads: Any) -> Any:
        commits.append(len(payloads))
        return real(payloads)

    log.chain.append_many = counting  # type: ignore[method-assign]
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
    # each caller got back exactly its own committed entry
    assert {k: e.persons[0] for k, e in got.items()} == {k: k for k in got}
    assert {e.hash for e in got.values()} == {e.hash for e in entries}
    log.dispose()


def test_group_commit_refuses_only_the_bad_entry(tmp_path: Path) -> None:
    log = AccessLog(f"sqlite:///{tmp_path / 'riskcast.sqlite'}")
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

    log = AccessLog(f"sqlite:///{tmp_path / 'riskcast.sqlite'}")
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
    real = log.chain.append_many
    log.chain.append_many = lambda p: (_time.sleep(0.5), real(p))[1]  # type: ignore[method-assign]
    writer.timeout = 0.1
    with pytest.raises(StoreError, match="did not commit within"):
        writer.append(payload)
    log.dispose()
    with pytest.raises(StoreError, match="closed"):
        writer.append(payload)
