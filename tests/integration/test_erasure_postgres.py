"""Erasure and retention on the real PostgreSQL, in a schema of their own (issue 13,
section 3): the access log's pseudonyms and their lookup rows, erasure of a person (the log
still verifies, the person reads as ``erased``, a later read of the id does not bring them
back), the online store's erasure, and sealing an old segment (the append-only triggers are
back afterwards and the log verifies from the sealed head)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from fairness.ledger import Ledger
from features.online.store import SqlOnlineStore
from riskcast.chain.seal import archive_problems, seal_before, seals
from serving.access_log import AccessLog, archive_dir
from tests.integration.conftest import POSTGRES
from tests.ledger_checks import KEY

pytestmark = pytest.mark.integration


def _read(log: AccessLog, person: str) -> None:
    log.append(
        actor="olga",
        role="officer",
        purpose="case_review",
        action="scores",
        persons=[person],
        params={},
        model_version="1",
        status=200,
    )


def test_erasure_and_retention_on_postgres(pg_schema: str, tmp_path: Path) -> None:
    log = AccessLog(POSTGRES, key=KEY, anchor_dir=tmp_path / "anchors", schema=pg_schema)
    log.archive_dir = archive_dir(tmp_path)
    ledger = Ledger(POSTGRES, key=KEY, anchor_dir=tmp_path / "anchors", schema=pg_schema)
    try:
        for person in ("A1", "B2", "A1", "C3", "B2", "A1"):
            _read(log, person)
        with log.engine.connect() as conn:
            stored = conn.execute(sa.select(log.table.c.persons)).scalars().all()
        assert all("A1" not in s and "psn:" in s for s in stored)  # never the id in clear
        assert len(log.entries(person="A1")) == 3

        with log.engine.begin() as conn:
            assert log.forget(conn, "A1") == 1
        ledger.append(
            "erasure",
            actor="dpo",
            role="admin",
            version="-",
            decision="erased",
            reasons=["reason: request"],
            data_digests={"pseudonym": log.pseudonyms.of("A1")},
        )
        _read(log, "A1")  # a later read of the erased id is logged, and stays unresolvable
        shown = [p for e in log.entries() for p in e.persons]
        assert "A1" not in shown and shown.count("erased") == 4 and shown.count("B2") == 2
        assert log.entries(person="A1") == []
        assert log.verify().ok and ledger.verify().ok

        cutoff = log.chain.entries(sa.select(log.table).where(log.table.c.seq == 5))[0].at
        seal = seal_before(log.chain, cutoff, archive_dir(tmp_path))
        assert seal is not None and seal.through_seq == 4
        assert [s.through_seq for s in seals(log.chain)] == [4]
        assert archive_problems(log.chain, archive_dir(tmp_path)) == (4, [])
        assert [e.seq for e in log.entries()] == [5, 6, 7]
        _read(log, "C3")
        check = log.verify()
        assert check.ok, check.problems
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), log.engine.begin() as c:
            c.execute(sa.delete(log.table).where(log.table.c.seq == 5))
    finally:
        ledger.dispose()
        log.dispose()


def test_online_store_erasure_on_postgres(pg_schema: str) -> None:
    store = SqlOnlineStore(POSTGRES, schema=pg_schema)
    try:
        frame = pl.DataFrame({"person_id": ["A1", "B2", "C3"], "x": [1.0, 2.0, 3.0]})
        first = store.materialize(frame, date(2025, 6, 30), "spec")
        assert store.erase(["A1", "nobody"]) == 1
        current = store.current()
        assert current is not None and current.rows == 2 and current.written_at > first.written_at
        assert current.as_of == first.as_of and current.spec_hash == "spec"
        assert store.get_vectors(["A1", "B2", "C3"])["person_id"].to_list() == ["B2", "C3"]
        assert store.erase(["A1"]) == 0
    finally:
        store.dispose()
