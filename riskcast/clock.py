"""Times as riskcast keeps them: aware UTC everywhere. Registers, SQLite and users hand over
naive values (meant as UTC) as often as aware ones; they are made aware UTC in one way."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator


def as_utc(value: datetime) -> datetime:
    """``value`` as aware UTC; a naive value is taken as UTC (as SQLite returns stored times)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def aware_utc(value: datetime) -> datetime:
    """``value`` as UTC; a naive value is refused (a chain entry's time must say its zone)."""
    if value.tzinfo is None:
        raise ValueError("must be timezone-aware (UTC)")
    return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
"""A pydantic field type: any datetime, kept as aware UTC (naive taken as UTC)."""

AwareUtcDatetime = Annotated[datetime, AfterValidator(aware_utc)]
"""A pydantic field type: an aware datetime, kept as UTC (naive refused)."""
