"""Ledger checks run on SQLite (unit) and on the real PostgreSQL (integration).

The tampering helpers (`raw`, `rehash`, `delete_newest`) work on any `ChainBacked` log, so the
access log's tests use them too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from fairness.ledger import GENESIS, Ledger, entry_hash, plain_hash
from riskcast.chain import ChainBacked
from riskcast.errors import InputError, StoreError

SHA = "ab" * 32
KEY = b"test-chain-key-not-the-default"
OTHER_KEY = b"another-chain-key-entirely"


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


def raw(ledger: ChainBacked, statement: str) -> None:
    """Run SQL outside the ledger's API (as someone with direct database access would)."""
    with ledger.engine.begin() as conn:
        conn.execute(sa.text(statement))


def target(ledger: ChainBacked) -> str:
    return ledger.engine.dialect.identifier_preparer.format_table(ledger.table)


def drop_triggers(ledger: ChainBacked) -> None:
    name = ledger.table.name
    if ledger.dialect == "sqlite":
        raw(ledger, f"DROP TRIGGER {name}_no_update")
        raw(ledger, f"DROP TRIGGER {name}_no_delete")
    else:
        raw(ledger, f"DROP TRIGGER {name}_no_change ON {target(ledger)}")


def delete_newest(log: ChainBacked, count: int) -> None:
    """Delete the newest ``count`` entries (the triggers dropped first): a shorter valid chain."""
    drop_triggers(log)
    newest = log.chain.rows(sa.select(sa.func.max(log.table.c.seq)))[0][0]
    raw(log, f"DELETE FROM {target(log)} WHERE seq > {newest - count}")


def rehash(log: ChainBacked, edit: dict[str, Any], seq: int, hash_of: Callable[..., str]) -> None:
    """Edit entry ``seq`` (``edit``: column values as stored) and re-hash it and every entry
    after it with ``hash_of`` (their fields), re-linking the chain: what an attacker who can
    write the table does. The triggers must be dropped first."""
    t = log.table
    if edit:
        with log.engine.begin() as conn:
            conn.execute(sa.update(t).where(t.c.seq == seq).values(**edit))
    rows = log.chain.rows(sa.select(t).where(t.c.seq >= seq - 1).order_by(t.c.seq))
    prev = rows[0].hash if rows[0].seq < seq else GENESIS
    with log.engine.begin() as conn:
        for row in rows:
            if row.seq < seq:
                continue
            fields = log.chain.fields(row) | {"prev_hash": prev}
            new = hash_of(fields)
            conn.execute(sa.update(t).where(t.c.seq == row.seq).values(prev_hash=prev, hash=new))
            prev = new


def anchor_lines(log: ChainBacked) -> list[str]:
    assert log.chain.anchors is not None
    return [
        line for line in log.chain.anchors.path.read_text().splitlines() if not line.startswith("#")
    ]


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
        assert e.hash == entry_hash(e.model_dump(), KEY)  # keyed: HMAC, not plain sha256
        assert e.hash != plain_hash(e.model_dump())
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
    assert result.anchored == 5  # every commit anchored its head
    assert anchor_lines(ledger)[-1] == f"5 {entries[-1].hash}"
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
    """Editing an entry and giving it the plain sha256 an attacker can compute: its hash is
    not the key's HMAC, the next entry's link breaks, and its anchor differs."""
    fill(ledger, 4)
    drop_triggers(ledger)
    entry = ledger.entries()[1]
    forged = entry.model_dump() | {"reasons": ["nothing to see"]}
    raw(
        ledger,
        f"UPDATE {target(ledger)} SET reasons = '[\"nothing to see\"]', "
        f"hash = '{plain_hash(forged)}' WHERE seq = 2",
    )
    problems = ledger.verify().problems
    assert len(problems) == 3, problems
    assert problems[0].startswith("seq 2: hashed without the chain key")
    assert problems[1].startswith("seq 3: chain broken")
    assert problems[2].startswith(f"seq 2: stored hash {plain_hash(forged)[:12]}… differs")


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
    # deleting the newest entry leaves a valid shorter chain: the anchors show it by default
    raw(ledger, f"DELETE FROM {target(ledger)} WHERE seq = 5")
    problems = ledger.verify().problems
    assert problems[-1].startswith("seq 5: missing at the end (the newest entries deleted)")
    assert any(p.startswith("head ") for p in ledger.verify(head=head).problems)


def check_newest_deleted_is_detected(ledger: Ledger) -> None:
    """The attack the head check needed an operator for: delete the newest entries."""
    fill(ledger, 5)
    delete_newest(ledger, 2)
    result = ledger.verify()
    assert not result.ok and result.entries == 3 and result.anchored == 5
    assert result.problems == [
        f"seq 4-5: missing at the end (the newest entries deleted): "
        f"{Path(result.anchors or '').name} anchors seq 5 "
        f"(hash {anchor_lines(ledger)[-1].split()[1][:12]}…) as committed, the ledger ends at "
        "seq 3"
    ]
    # appending again after the deletion re-uses seqs 4 and 5, with other hashes: still found
    fill(ledger, 3)
    problems = ledger.verify().problems
    assert [p.split(":")[0] for p in problems] == ["seq 4", "seq 5"], problems
    assert all("differs from the one anchored" in p for p in problems)


def check_plain_rehash_of_the_rest_is_detected(ledger: Ledger) -> None:
    """Edit an entry and re-hash it and all after it, links included, with the plain hash:
    a consistent chain to the old verify, but not one carrying the key's HMAC."""
    fill(ledger, 5)
    drop_triggers(ledger)
    rehash(ledger, {"decision": "pass"}, 3, plain_hash)
    result = ledger.verify()
    assert not result.ok
    assert result.problems[:3] == [
        f"seq {s}: hashed without the chain key (re-hashed by someone who does not hold "
        "RISKCAST_CHAIN_KEY, or written before chain keys)"
        for s in (3, 4, 5)
    ]
    assert [p.split(":")[0] for p in result.problems[3:]] == ["seq 3", "seq 4", "seq 5"]
    # and the writers refuse to chain onto a head without the key's HMAC
    with pytest.raises(StoreError, match="does not carry this chain key's HMAC"):
        fill(ledger, 1)


def check_keyed_rehash_is_found_by_the_anchors(ledger: Ledger) -> None:
    """Even someone holding the key (re-hashing with the HMAC) cannot rewrite the anchors."""
    fill(ledger, 5)
    drop_triggers(ledger)
    rehash(ledger, {"decision": "overruled"}, 2, lambda fields: entry_hash(fields, KEY))
    problems = ledger.verify().problems
    assert [p.split(":")[0] for p in problems] == ["seq 2", "seq 3", "seq 4", "seq 5"]
    assert all("differs from the one anchored when it was committed" in p for p in problems)


def check_wrong_key_fails(ledger: Ledger, url: str, schema: str | None, anchors: Path) -> None:
    fill(ledger, 3)
    other = Ledger(url, key=OTHER_KEY, anchor_dir=anchors, schema=schema)
    try:
        result = other.verify()
        assert not result.ok
        assert result.problems == [
            "seq 1-3: no entry carries this chain key's HMAC (0 of 3 are plain sha256): the "
            "ledger was written with another RISKCAST_CHAIN_KEY, or by a riskcast before chain "
            "keys (recreate it: serving/README.md, 'Chain key'), or rewritten whole"
        ]
        with pytest.raises(StoreError, match="does not carry this chain key's HMAC"):
            fill(other, 1)
    finally:
        other.dispose()
    assert ledger.verify().ok and len(ledger.entries()) == 3


def check_missing_anchor_file_fails(ledger: Ledger) -> None:
    fill(ledger, 2)
    assert ledger.chain.anchors is not None
    ledger.chain.anchors.path.unlink()
    problems = ledger.verify().problems
    assert len(problems) == 1 and problems[0].startswith("no anchor file "), problems


def check_a_writer_dying_after_its_commit(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer killed between its commit and its anchor: the anchor is one commit behind
    (no false alarm), and the next writer anchors that head before it commits anything."""
    fill(ledger, 3)
    anchors = ledger.chain.anchors
    assert anchors is not None

    def killed(seq: int, hash: str) -> None:
        raise OSError("killed before anchoring")

    monkeypatch.setattr(anchors, "record", killed)
    fill(ledger, 1)  # seq 4 committed, not anchored
    assert ledger.verify().ok and ledger.verify().anchored == 3
    fresh = Ledger(  # the next writer: another process
        str(ledger.engine.url.render_as_string(hide_password=False)),
        key=KEY,
        anchor_dir=anchors.path.parent,
        schema=ledger.schema,
    )
    try:
        fill(fresh, 1)  # seq 5: anchors seq 4 first, then itself
        seq4 = ledger.entries()[3].hash
        assert anchor_lines(ledger)[-2:] == [f"4 {seq4}", f"5 {ledger.entries()[4].hash}"]
    finally:
        fresh.dispose()
    delete_newest(ledger, 2)
    assert ledger.verify().problems[0].startswith("seq 4-5: missing at the end")


def check_verify_during_appends_never_alarms(url: str, schema: str | None, anchors: Path) -> None:
    """The anchors are read before the table: commits made while verifying are no alarm."""
    writer = Ledger(url, key=KEY, anchor_dir=anchors, schema=schema)
    reader = Ledger(url, key=KEY, anchor_dir=anchors, schema=schema)
    stop = threading.Event()
    errors: list[BaseException] = []

    def append() -> None:
        try:
            while not stop.is_set():
                fill(writer, 1)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=append)
    thread.start()
    results = []
    deadline = time.monotonic() + 60
    try:  # verify until a good number of commits happened while verifying
        while (len(results) < 20 or results[-1].entries < 40) and time.monotonic() < deadline:
            results.append(reader.verify())
    finally:
        stop.set()
        thread.join()
    assert errors == []
    assert [r.problems for r in results if not r.ok] == []
    assert len({r.entries for r in results}) > 5  # appends did happen meanwhile
    final = reader.verify()
    assert final.ok and final.anchored == final.entries
    writer.dispose()
    reader.dispose()


def check_reordered_entries_are_detected(ledger: Ledger) -> None:
    fill(ledger, 4)
    drop_triggers(ledger)
    t = target(ledger)
    for seq, temp in ((2, 102), (3, 2), (102, 3)):  # swap entries 2 and 3
        raw(ledger, f"UPDATE {t} SET seq = {temp} WHERE seq = {seq}")
    problems = ledger.verify().problems
    assert any(p.startswith("seq 2: reordered") for p in problems), problems
    assert any(p.startswith("seq 3: reordered") for p in problems), problems


def check_concurrent_appends_keep_one_chain(
    url: str, anchors: Path, schema: str | None = None
) -> None:
    """Two writers, each with its own engine (as two processes would), create the ledger and
    append at once; the anchors they both write never raise a false alarm."""
    writers = [Ledger(url, key=KEY, anchor_dir=anchors, schema=schema) for _ in range(2)]
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
    assert result.anchored == 30
    entries = writers[1].entries()
    assert [e.seq for e in entries] == list(range(1, 31))
    assert sorted(e.actor for e in entries) == ["a"] * 15 + ["b"] * 15
    for writer in writers:
        writer.dispose()
