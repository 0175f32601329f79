"""Retention (issue 13, section 3): old access-log entries are sealed, archived with their
sha256 and removed, and the log still verifies from the sealed head; old decisions are deleted;
a `retention` ledger entry records both; tampering with a seal, the archive or the live rows
is still found."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from fairness.ledger import Ledger
from riskcast.chain.seal import archive_problems, seal_before, seals, seals_table
from riskcast.errors import ConfigError
from serving.access_log import AccessLog, archive_dir
from serving.cli import build_app
from serving.db import decisions, open_engine
from serving.retention import RetentionConfig, apply_retention, load_retention
from tests.ledger_checks import KEY
from tests.service_helpers import environment


@pytest.fixture
def log(tmp_path: Path) -> Iterator[AccessLog]:
    opened = AccessLog(
        f"sqlite:///{tmp_path / 'riskcast.sqlite'}", key=KEY, anchor_dir=tmp_path / "anchors"
    )
    opened.archive_dir = archive_dir(tmp_path)
    yield opened
    opened.dispose()


def fill(log: AccessLog, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        log.append(
            actor="olga",
            role="officer",
            purpose="case_review",
            action="scores",
            persons=[f"P{i}"],
            params={"ids": 1},
            model_version="1",
            status=200,
        )


def test_sealing_keeps_the_log_verifiable(log: AccessLog, tmp_path: Path) -> None:
    fill(log, 10)
    cutoff = log.chain.entries(sa.select(log.table).where(log.table.c.seq == 7))[0].at
    seal = seal_before(log.chain, cutoff, archive_dir(tmp_path))
    assert seal is not None and seal.through_seq == 6 and seal.entries == 6
    assert [e.seq for e in log.entries()] == [7, 8, 9, 10]
    assert log.entries(person="P8")[0].persons == ["P8"]  # the live ones still resolve
    archive = archive_dir(tmp_path) / seal.archive
    lines = archive.read_bytes().splitlines()
    assert len(lines) == 6 and json.loads(lines[-1])["hash"] == seal.head_hash
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == seal.archive_sha256
    stored = [json.loads(x) for x in lines]
    assert [x["seq"] for x in stored] == [1, 2, 3, 4, 5, 6]
    assert all(json.loads(x["persons"])[0].startswith("psn:") for x in stored)  # no ids
    assert stored[0]["at"].endswith("Z") and stored[1]["prev_hash"] == stored[0]["hash"]
    check = log.verify()
    assert check.ok, check.problems
    assert check.entries == 4
    fill(log, 3, start=10)  # appends chain on as before
    assert log.verify().ok
    # a second seal moves forward from the first
    head = log.chain.entries(sa.select(log.table).where(log.table.c.seq == 12))[0].at
    second = seal_before(log.chain, head, archive_dir(tmp_path))
    assert second is not None and second.through_seq == 11 and second.entries == 5
    assert [s.through_seq for s in seals(log.chain)] == [6, 11]
    assert log.verify().ok
    # the head always stays live, whatever the cutoff
    last = seal_before(log.chain, datetime.now(UTC) + timedelta(days=1), archive_dir(tmp_path))
    assert last is not None and [e.seq for e in log.entries()] == [13]
    assert seal_before(log.chain, datetime.now(UTC) + timedelta(days=1), tmp_path) is None
    assert log.verify().ok
    assert archive_problems(log.chain, archive_dir(tmp_path)) == (12, [])


def test_tampering_after_a_seal_is_found(log: AccessLog, tmp_path: Path) -> None:
    fill(log, 6)
    cutoff = log.chain.entries(sa.select(log.table).where(log.table.c.seq == 4))[0].at
    seal = seal_before(log.chain, cutoff, archive_dir(tmp_path))
    assert seal is not None and log.verify().ok
    # the live table still refuses deletions (the triggers are back)
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), log.engine.begin() as conn:
        conn.execute(sa.delete(log.table).where(log.table.c.seq == 4))
    # a seal moved to hide deleted entries breaks its HMAC
    table = seals_table(log.chain)
    with log.engine.begin() as conn:
        conn.execute(sa.update(table).values(through_seq=4))
    problems = log.verify().problems
    assert any("not this chain key's HMAC" in p for p in problems)
    assert any("seq 4: live, yet sealed" in p for p in problems)
    with log.engine.begin() as conn:
        conn.execute(sa.update(table).values(through_seq=3))
    assert log.verify().ok
    assert archive_problems(log.chain, archive_dir(tmp_path)) == (3, [])
    # the archive edited
    archive = archive_dir(tmp_path) / seal.archive
    archive.write_bytes(archive.read_bytes().replace(b"olga", b"oleg"))
    assert any("archive" in p for p in log.verify().problems)
    checked, problems = archive_problems(log.chain, archive_dir(tmp_path))
    assert checked == 3 and any("content edited" in p for p in problems)


def test_apply_retention_seals_deletes_old_decisions_and_records_it(
    log: AccessLog, tmp_path: Path
) -> None:
    fill(log, 5)
    engine = open_engine(str(log.engine.url))
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for days in (10, 400, 2000):
            conn.execute(
                sa.insert(decisions).values(
                    recorded_at=now - timedelta(days=days),
                    officer="olga",
                    person_id=f"P{days}",
                    region="AST",
                    action="contacted",
                    reason="text",
                    override=False,
                )
            )
    ledger = Ledger(str(log.engine.url), key=KEY, anchor_dir=tmp_path / "anchors")
    config = RetentionConfig(config_version="t", access_log_days=30, decisions_days=365)
    nothing = apply_retention(
        config, access_log=log, engine=engine, ledger=ledger, home=tmp_path, by="ops"
    )
    assert nothing.seal is None and nothing.decisions_deleted == 2
    later = now + timedelta(days=31)  # every entry is now older than 30 days
    done = apply_retention(
        config, access_log=log, engine=engine, ledger=ledger, home=tmp_path, by="ops", now=later
    )
    assert done.seal is not None and done.seal.through_seq == 4
    with engine.connect() as conn:
        left = conn.execute(sa.select(decisions.c.person_id)).scalars().all()
    assert left == ["P10"]  # 41 days old at the later date: kept
    assert log.verify().ok and [e.seq for e in log.entries()] == [5]
    recorded = ledger.entries(kind="retention")
    assert [e.seq for e in recorded] == [nothing.ledger_seq, done.ledger_seq]
    assert recorded[1].data_digests["sealed_head"] == done.seal.head_hash
    assert recorded[1].data_digests["archive_sha256"] == done.seal.archive_sha256
    assert recorded[0].data_digests == {"decisions_deleted": "2"}
    assert ledger.verify().ok
    ledger.dispose()
    engine.dispose()


def test_the_config_is_typed_and_the_command_runs(tmp_path: Path) -> None:
    shipped = load_retention()
    assert shipped.access_log_days >= 365 and shipped.decisions_days >= 365
    bad = tmp_path / "retention.yaml"
    bad.write_text("config_version: x\naccess_log_days: 0\ndecisions_days: 5\nextra: 1\n")
    with pytest.raises(ConfigError, match=r"access_log_days|extra"):
        load_retention(bad)
    home = tmp_path / "home"
    runner = CliRunner()
    with environment(RISKCAST_HOME=str(home), RISKCAST_DATABASE_URL=None):
        out = runner.invoke(build_app(), ["retention", "apply", "--by", "ops"])
        assert out.exit_code == 0, out.output + repr(out.exception)
        assert "nothing sealed" in out.output and "0 decision(s) deleted" in out.output
        verified = runner.invoke(build_app(), ["access-log", "verify"])
        assert verified.exit_code == 0, verified.output
        archived = runner.invoke(build_app(), ["retention", "verify"])
        assert archived.exit_code == 0 and "intact: 0 entries" in archived.output
        shown = runner.invoke(build_app(), ["ledger", "show", "--json"])
        assert '"retention"' in shown.output


def test_a_forgotten_person_stays_erased_in_the_log(log: AccessLog, tmp_path: Path) -> None:
    fill(log, 3)  # P0, P1, P2
    assert [e.persons for e in log.entries(person="P1")] == [["P1"]]
    with log.engine.begin() as conn:
        assert log.forget(conn, "P1") == 1
        assert log.forget(conn, "P1") == 0  # twice is harmless
    fill(log, 1, start=1)  # the erased id read again (e.g. an officer typing it)
    other = AccessLog(str(log.engine.url), key=KEY, anchor_dir=tmp_path / "anchors")
    fill(other, 1, start=1)  # and by another process that never knew it
    other.dispose()
    assert [e.persons for e in log.entries()] == [
        ["P0"],
        ["erased"],
        ["P2"],
        ["erased"],
        ["erased"],
    ]
    assert log.entries(person="P1") == [] and log.verify().ok
    with log.engine.connect() as conn:
        texts = conn.execute(sa.text("SELECT persons, params FROM access_log")).all()
        ids = conn.execute(sa.text("SELECT person_id FROM access_log_persons")).scalars().all()
    assert all("P1" not in persons and "P1" not in params for persons, params in texts)
    assert sorted(ids) == ["P0", "P2"]
