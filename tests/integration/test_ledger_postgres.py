"""The promotion ledger on the real PostgreSQL, in its own schema (dropped after)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from fairness.ledger import Ledger, open_ledger
from riskcast.chain.settings import ChainSettings
from riskcast.settings import Settings
from tests import ledger_checks as checks
from tests.integration.conftest import POSTGRES

pytestmark = pytest.mark.integration


@pytest.fixture
def ledger(schema: str, tmp_path: Path) -> Iterator[Ledger]:
    store = open_ledger(
        Settings(home=tmp_path, database_url=POSTGRES),
        schema=schema,
        chain=ChainSettings(chain_key=checks.KEY.decode()),
    )
    assert store.chain.anchors is not None
    assert store.chain.anchors.path.parent == (tmp_path / "anchors").resolve()
    yield store
    store.dispose()


def test_chain(ledger: Ledger) -> None:
    assert ledger.dialect == "postgresql"
    checks.check_chain(ledger)


def test_triggers_block_update_delete_and_truncate(ledger: Ledger) -> None:
    checks.check_triggers_block_update_and_delete(ledger)


def test_edited_entry_is_detected(ledger: Ledger) -> None:
    checks.check_edited_entry_is_detected(ledger)


def test_rehashed_edit_is_detected(ledger: Ledger) -> None:
    checks.check_rehashed_edit_is_detected(ledger)


def test_deleted_entry_is_detected(ledger: Ledger) -> None:
    checks.check_deleted_entry_is_detected(ledger)


def test_reordered_entries_are_detected(ledger: Ledger) -> None:
    checks.check_reordered_entries_are_detected(ledger)


def test_newest_deleted_is_detected(ledger: Ledger) -> None:
    checks.check_newest_deleted_is_detected(ledger)


def test_plain_rehash_of_the_rest_is_detected(ledger: Ledger) -> None:
    checks.check_plain_rehash_of_the_rest_is_detected(ledger)


def test_keyed_rehash_is_found_by_the_anchors(ledger: Ledger) -> None:
    checks.check_keyed_rehash_is_found_by_the_anchors(ledger)


def test_wrong_key_fails(ledger: Ledger, schema: str, tmp_path: Path) -> None:
    checks.check_wrong_key_fails(ledger, POSTGRES, schema, tmp_path / "anchors")


def test_missing_anchor_file_fails(ledger: Ledger) -> None:
    checks.check_missing_anchor_file_fails(ledger)


def test_a_writer_dying_after_its_commit(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    checks.check_a_writer_dying_after_its_commit(ledger, monkeypatch)


def test_verify_during_appends_never_alarms(schema: str, tmp_path: Path) -> None:
    checks.check_verify_during_appends_never_alarms(POSTGRES, schema, tmp_path / "anchors")


def test_concurrent_appends_keep_one_chain(schema: str, tmp_path: Path) -> None:
    checks.check_concurrent_appends_keep_one_chain(POSTGRES, tmp_path / "anchors", schema=schema)


def test_schemas_are_isolated(schema: str, tmp_path: Path) -> None:
    anchors = tmp_path / "anchors"  # shared by both schemas, as one home would be
    first = Ledger(POSTGRES, key=checks.KEY, anchor_dir=anchors, schema=schema)
    checks.fill(first, 2)
    first.dispose()
    other = f"riskcast_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{other}"'))
    try:
        second = Ledger(POSTGRES, key=checks.KEY, anchor_dir=anchors, schema=other)
        assert second.entries() == [] and second.verify().ok
        checks.fill(second, 1)
        assert second.verify().ok  # the first schema's anchors are not its own
        second.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{other}" CASCADE'))
        admin.dispose()
