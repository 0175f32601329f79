"""Large exports: reads that handed many persons to one user at once, counted for auditors.

Why: lists are bounded per role (`ServingSettings.max_list_capacity`, ``max_page_size``), but
the bound is a setting, and many pages in a row add up; an auditor must see how often a
single read named many persons, and by whom, without reading the whole access log. The count
comes from the access log itself (every read is there), so it cannot disagree with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from riskcast.clock import as_utc

READ_ACTIONS = ("risk-list", "scores")
"""The access-log actions that hand person-level scores out."""


@dataclass(frozen=True)
class LargeExports:
    """How many served reads named more than ``min_persons`` persons."""

    min_persons: int
    count: int
    persons: int  # persons named by those reads, in all (a person read twice counts twice)
    by_actor: dict[str, int] = field(default_factory=dict)
    latest: datetime | None = None

    def describe(self) -> str:
        """One line for the auditor page."""
        if not self.count:
            return f"no read named more than {self.min_persons} persons"
        who = ", ".join(f"{a}: {n}" for a, n in sorted(self.by_actor.items()))
        when = f"; latest {self.latest:%Y-%m-%d %H:%M} UTC" if self.latest else ""
        return (
            f"{self.count} reads named more than {self.min_persons} persons "
            f"({self.persons} in all; {who}){when}"
        )


def count_large_exports(
    access_log: Any, min_persons: int, since: datetime | None = None
) -> LargeExports:
    """Served reads (status 200) of scores or risk lists naming more than ``min_persons``
    persons, in the access log ``access_log`` (a `serving.access_log.AccessLog`), optionally
    only those at or after ``since``. Reads only the columns it counts."""
    table: sa.Table = access_log.table
    query = sa.select(table.c.actor, table.c.at, table.c.persons).where(
        table.c.action.in_(READ_ACTIONS), table.c.status == 200
    )
    if since is not None:
        query = query.where(table.c.at >= as_utc(since))
    count = persons = 0
    by_actor: dict[str, int] = {}
    latest: datetime | None = None
    with access_log.engine.connect() as conn:
        for actor, at, named in conn.execute(query):
            size = len(named or [])
            if size <= min_persons:
                continue
            count += 1
            persons += size
            by_actor[str(actor)] = by_actor.get(str(actor), 0) + 1
            stamp = as_utc(at) if isinstance(at, datetime) else None
            if stamp is not None and (latest is None or stamp > latest):
                latest = stamp
    return LargeExports(min_persons, count, persons, by_actor, latest)
