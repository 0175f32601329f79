"""Fixtures shared by every test folder: a PostgreSQL schema of its own for one test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

POSTGRES = os.environ.get(
    "RISKCAST_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema with a random name in the test database, dropped (with all it holds)
    afterwards, so that runs and parallel workers never collide."""
    name = f"riskcast_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    except sa.exc.OperationalError as exc:  # pragma: no cover - environment without PostgreSQL
        admin.dispose()
        pytest.fail(f"PostgreSQL at {POSTGRES} is not reachable: {exc}")
    try:
        yield name
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()
