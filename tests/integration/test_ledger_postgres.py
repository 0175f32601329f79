"""The promotion ledger on the real PostgreSQL, in its own schema (dropped after)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from fairness.ledger import Ledger, open_ledger
from features.settings import Settings
from tests import ledger_checks as checks
from tests.integration.conftest import POSTGRES

pytestmark = pytest.mark.integration


@pytest.fixture
def ledger(schema: str) -> Iterator[Ledger]:
    store = open_ledger(Settings(database_url=POSTGRES), schema=schema)
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


def test_concurrent_appends_keep_one_chain(schema: str) -> None:
    checks.check_concurrent_appends_keep_one_chain(POSTGRES, schema=schema)


def test_schemas_are_isolated(schema: str) -> None:
    first = Ledger(POSTGRES, schema=schema)
    checks.fill(first, 2)
    first.dispose()
    other = f"riskcast_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{other}"'))
    try:
        second = Ledger(POSTGRES, schema=other)
        assert second.entries() == [] and second.verify().ok
        second.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{other}" CASCADE'))
        admin.dispose()
