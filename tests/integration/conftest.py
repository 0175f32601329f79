"""Integration tests run against the real PostgreSQL; each test gets its own schema."""

from __future__ import annotations

import pytest

from tests.conftest import POSTGRES

__all__ = ["POSTGRES"]


@pytest.fixture
def pg_url() -> str:
    return POSTGRES


@pytest.fixture
def schema(pg_schema: str) -> str:
    """A fresh schema with a random name, dropped afterwards (`tests.conftest.pg_schema`)."""
    return pg_schema
