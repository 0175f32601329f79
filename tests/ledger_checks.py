"""Ledger checks run on SQLite (unit) and on the real PostgreSQL (integration)."""

from __future__ import annotations

import threading
from datetime import timedelta
from itertools import pairwise

import pytest
import sqlalchemy as sa

from fairness.ledger import GENESIS, Ledger, entry_hash
from features.errors import InputError

SHA = "ab" * 32


def fill(ledger: Ledger, n: int = 5) -> None:
    kinds = ["audit", "promotion", "refusal", "override", "rollback"]
    for i in range(n):
        ledger.append(
            kinds[i % len(kinds)],
            actor=f"user{i}",
            role="auditor" if i % 2 else "data-scientist",
            version=f"v{i % 2 + 1}",
            decision="pass" if i % 2 else "fail",
            reasons=[f"reason {i}", "ÆØÅ – naïve"],
            report_sha256=SHA if i % 2 else None,
            data_digests={"test": "cd" * 32, "train": "ef" * 32} if i % 2 else None,
        )


def raw(ledger: Ledger, statement: str) -> None:
    """Run SQL outside the ledger's API (as someone with direct database access would)."""
    with ledger.engine.begin() as conn:
        conn.execute(sa.text(statement))


def target(ledger: Ledger) -> str:
    return ledger.engine.dialect.identifier_preparer.format_table(ledger.table)


def drop_triggers(ledger: Ledger) -> None:
    if ledger.dialect == "sqlite":
        raw(ledger, "DROP TRIGGER ledger_entries_no_update")
        raw(ledger, "DROP TRIGGER ledger_entries_no_delete")
    else:
        raw(ledger, f"DROP TRIGGER ledger_entries_no_change ON {target(ledger)}")


def check_chain(ledger: Ledger) -> None:
    assert ledger.entries() == []
    assert ledger.last() is None
    empty = ledger.verify()
    assert (empty.ok, empty.entries, empty.head) == (True, 0, None)
    fill(ledger, 5)
    entries = ledger.entries()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS
    for before, after in pairwise(entries):
        assert after.prev_hash == before.hash
        assert after.at >= before.at
    for e in entries:
        assert e.hash == entry_hash(e.model_dump())
        assert e.at.utcoffset() == timedelta(0)
    assert entries[1].report_sha256 == SHA and entries[0].report_sha256 is None
    assert entries[1].data_digests == {"test": "cd" * 32, "train": "ef" * 32}
    assert entries[0].reasons == ["reason 0", "ÆØÅ – naïve"]
    result = ledger.verify()
    assert (result.ok, result.entries, result.head, result.problems) == (
        True,
        5,
        entries[-1].hash,
        [],
    )
    assert [e.seq for e in ledger.entries(version="v2")] == [2, 4]
    assert [e.seq for e in ledger.entries(kind="audit")] == [1]
    assert [e.seq for e in ledger.entries(version="v1", kind="refusal")] == [3]
    last = ledger.last(kind="promotion", version="v2")
    assert last is not None and last.seq == 2
    newest = ledger.last()
    assert newest is not None and newest.seq == 5
    assert ledger.last(kind="override", version="v1") is None
    with pytest.raises(InputError, match="kind 'bogus'"):
        ledger.append("bogus", actor="a", role="r", version="v", decision="d", reasons=[])
    with pytest.raises(InputError, match="report_sha256"):
        ledger.append(
            "audit", actor="a", role="r", version="v", decision="d", reasons=[], report_sha256="x"
        )
    assert len(ledger.entries()) == 5  # refused appends wrote nothing


def check_triggers_block_update_and_delete(ledger: Ledger) -> None:
    fill(ledger, 3)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        raw(ledger, f"UPDATE {target(ledger)} SET decision = 'pass' WHERE seq = 2")
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        raw(ledger, f"DELETE FROM {target(ledger)} WHERE seq = 2")
    if ledger.dialect == "postgresql":
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            raw(ledger, f"TRUNCATE {target(ledger)}")
    with pytest.raises(sa.exc.IntegrityError):  # a fork: a second entry after the genesis
        first = ledger.entries()[0]
        row = first.model_dump() | {"seq": 9, "hash": "f" * 64}
        row["reasons"], row["data_digests"] = "[]", "{}"
        with ledger.engine.begin() as conn:
            conn.execute(sa.insert(ledger.table).values(row))
    assert ledger.verify().ok


def check_edited_entry_is_detected(ledger: Ledger) -> None:
    fill(ledger, 5)
    drop_triggers(ledger)
    raw(ledger, f"UPDATE {target(ledger)} SET decision = 'pass' WHERE seq = 3")
    result = ledger.verify()
    assert not result.ok
    assert result.entries == 5
    assert len(result.problems) == 1
    assert result.problems[0].startswith("seq 3: content edited")


def check_rehashed_edit_is_detected(ledger: Ledger) -> None:
    """Editing an entry and recomputing its hash breaks the link to the next entry."""
    fill(ledger, 4)
    drop_triggers(ledger)
    entry = ledger.entries()[1]
    forged = entry.model_dump() | {"reasons": ["nothing to see"]}
    raw(
        ledger,
        f"UPDATE {target(ledger)} SET reasons = '[\"nothing to see\"]', "
        f"hash = '{entry_hash(forged)}' WHERE seq = 2",
    )
    problems = ledger.verify().problems
    assert len(problems) == 1 and problems[0].startswith("seq 3: chain broken"), problems


def check_deleted_entry_is_detected(ledger: Ledger) -> None:
    fill(ledger, 5)
    head = ledger.verify().head
    drop_triggers(ledger)
    raw(ledger, f"DELETE FROM {target(ledger)} WHERE seq = 3")
    result = ledger.verify()
    assert not result.ok and result.entries == 4
    assert result.problems[0].startswith("seq 3: missing"), result.problems
    assert result.problems[1].startswith("seq 4: chain broken"), result.problems
    raw(ledger, f"DELETE FROM {target(ledger)} WHERE seq = 1")
    assert ledger.verify().problems[0].startswith("seq 1: missing")
    # deleting the newest entry leaves a valid shorter chain: only a recorded head shows it
    raw(ledger, f"DELETE FROM {target(ledger)} WHERE seq = 5")
    assert not any("seq 5" in p for p in ledger.verify().problems)
    assert any(p.startswith("head ") for p in ledger.verify(head=head).problems)


def check_reordered_entries_are_detected(ledger: Ledger) -> None:
    fill(ledger, 4)
    drop_triggers(ledger)
    t = target(ledger)
    for seq, temp in ((2, 102), (3, 2), (102, 3)):  # swap entries 2 and 3
        raw(ledger, f"UPDATE {t} SET seq = {temp} WHERE seq = {seq}")
    problems = ledger.verify().problems
    assert any(p.startswith("seq 2: reordered") for p in problems), problems
    assert any(p.startswith("seq 3: reordered") for p in problems), problems


def check_concurrent_appends_keep_one_chain(url: str, schema: str | None = None) -> None:
    """Two writers, each with its own engine (as two processes would), create the ledger and
    append at once."""
    writers = [Ledger(url, schema=schema) for _ in range(2)]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def write(ledger: Ledger, name: str) -> None:
        try:
            start.wait()
            for i in range(15):
                ledger.append(
                    "audit", actor=name, role="r", version=f"{name}-{i}", decision="d", reasons=[]
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(w, n)) for w, n in zip(writers, "ab", strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    result = writers[0].verify()
    assert result.ok, result.problems
    entries = writers[1].entries()
    assert [e.seq for e in entries] == list(range(1, 31))
    assert sorted(e.actor for e in entries) == ["a"] * 15 + ["b"] * 15
    for writer in writers:
        writer.dispose()
