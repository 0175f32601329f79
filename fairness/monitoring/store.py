"""The monitoring store: every check kept, so checks form time series.

SQLAlchemy Core on the deployment's database (``RISKCAST_DATABASE_URL``, else SQLite
``riskcast.sqlite`` under ``RISKCAST_HOME``, as the ledger and the service's tables), two
tables:

- ``monitoring_checks``: one row per check (model, version, as-of, when, breach count, whether
  a re-audit is due) and the whole `CheckResult` as JSON, read back typed;
- ``monitoring_figures``: every figure of the check (`check.figures`) as one row (check id,
  name, labels as canonical JSON, value), for time series of one figure without parsing
  results.

The read API (the monitoring page builds on it):

- ``checks(model, since=None, version=None) -> list[StoredCheck]``, oldest first;
- ``latest(model, version=None) -> StoredCheck | None``;
- ``at(model, as_of, version=None) -> StoredCheck | None`` (the newest check of that as-of);
- ``series(model, name, since=None) -> list[FigurePoint]`` (one figure over time);
- ``places_weeks(model, version=None) -> list[WeekTotal]`` (the places champion's realised
  weeks, forecast vs counted, across its checks: the realised-vs-forecast time series).

A places check is the same row: its realised performance and alerts are the result's
``places`` part (`fairness.monitoring.places`), its figures the ``places_*`` names; the
``breaches`` column counts its alerts with the drift breaches.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from fairness.monitoring.check import CheckResult, Figure, figures
from fairness.monitoring.places import WeekTotal
from riskcast.clock import utcnow
from riskcast.db import make_engine, masked
from riskcast.errors import InputError
from riskcast.settings import Settings, get_settings

CHECKS = "monitoring_checks"
FIGURES = "monitoring_figures"


@dataclass(frozen=True)
class StoredCheck:
    """One kept check: its id, when it was stored and the typed result."""

    id: int
    stored_at: datetime
    result: CheckResult

    @property
    def breach_count(self) -> int:
        return len(self.result.breaches)


@dataclass(frozen=True)
class FigurePoint:
    """One figure's value in one check (a point of its time series)."""

    check_id: int
    model: str
    version: str
    as_of: date
    labels: dict[str, str]
    value: float


class MonitoringStore:
    """Checks on SQLite or PostgreSQL; ``schema`` isolates them (PostgreSQL only)."""

    def __init__(self, url: str, *, schema: str | None = None) -> None:
        self.engine = make_engine(url, what="monitoring store")
        if schema is not None and self.engine.dialect.name != "postgresql":
            raise InputError(f"schema {schema!r}: only a PostgreSQL monitoring store takes one")
        md = sa.MetaData(schema=schema)
        self.checks_table = sa.Table(
            CHECKS,
            md,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("model", sa.String(100), nullable=False),
            sa.Column("version", sa.String(32), nullable=False),
            sa.Column("as_of", sa.Date, nullable=False),
            sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("breaches", sa.Integer, nullable=False),
            sa.Column("reaudit", sa.Boolean, nullable=False),
            sa.Column("result", sa.Text, nullable=False),
            sa.Index("ix_monitoring_checks_model_as_of", "model", "as_of"),
        )
        self.figures_table = sa.Table(
            FIGURES,
            md,
            sa.Column(
                "check_id", sa.Integer, sa.ForeignKey(self.checks_table.c.id), nullable=False
            ),
            sa.Column("name", sa.String(64), nullable=False),
            sa.Column("labels", sa.Text, nullable=False),
            sa.Column("value", sa.Float, nullable=False),
            sa.Index("ix_monitoring_figures_name", "name", "check_id"),
        )
        md.create_all(self.engine)

    @property
    def where(self) -> str:
        return masked(self.engine.url)

    def dispose(self) -> None:
        self.engine.dispose()

    # ---- writing -----------------------------------------------------------------------------
    def record(self, result: CheckResult) -> StoredCheck:
        """Keep one check and its figures in one transaction."""
        stored_at = utcnow()
        rows = figures(result)
        with self.engine.begin() as conn:
            inserted = conn.execute(
                sa.insert(self.checks_table).values(
                    model=result.model,
                    version=result.version,
                    as_of=result.as_of,
                    checked_at=result.checked_at,
                    stored_at=stored_at,
                    breaches=result.alert_count,
                    reaudit=bool(result.reaudit),
                    result=result.model_dump_json(),
                )
            ).inserted_primary_key
            check_id = int(inserted[0]) if inserted is not None else 0
            if rows:
                conn.execute(
                    sa.insert(self.figures_table),
                    [
                        {
                            "check_id": check_id,
                            "name": f.name,
                            "labels": json.dumps(f.labels, sort_keys=True),
                            "value": f.value,
                        }
                        for f in rows
                    ],
                )
        return StoredCheck(int(check_id), stored_at, result)

    # ---- reading -----------------------------------------------------------------------------
    def _read(self, query: sa.Select[Any]) -> list[StoredCheck]:
        with self.engine.connect() as conn:
            found = conn.execute(query).all()
        return [
            StoredCheck(int(row[0]), _aware(row[1]), CheckResult.model_validate_json(row[2]))
            for row in found
        ]

    def _select(self, model: str, version: str | None) -> sa.Select[Any]:
        t = self.checks_table
        query = sa.select(t.c.id, t.c.stored_at, t.c.result).where(t.c.model == model)
        return query if version is None else query.where(t.c.version == version)

    def checks(
        self, model: str, since: date | None = None, version: str | None = None
    ) -> list[StoredCheck]:
        """The checks of ``model`` (of one ``version``) with as-of on or after ``since``,
        oldest first (by as-of, then by when they were kept)."""
        t = self.checks_table
        query = self._select(model, version)
        if since is not None:
            query = query.where(t.c.as_of >= since)
        return self._read(query.order_by(t.c.as_of, t.c.id))

    def latest(self, model: str, version: str | None = None) -> StoredCheck | None:
        """The check kept last for ``model``."""
        found = self._read(self._select(model, version).order_by(self.checks_table.c.id.desc()))
        return found[0] if found else None

    def at(self, model: str, as_of: date, version: str | None = None) -> StoredCheck | None:
        """The newest check of ``model`` with this as-of."""
        t = self.checks_table
        query = self._select(model, version).where(t.c.as_of == as_of).order_by(t.c.id.desc())
        found = self._read(query.limit(1))
        return found[0] if found else None

    def before(self, model: str, as_of: date, version: str | None = None) -> StoredCheck | None:
        """The newest check of ``model`` with an as-of before ``as_of`` (the previous check)."""
        t = self.checks_table
        query = self._select(model, version).where(t.c.as_of < as_of)
        found = self._read(query.order_by(t.c.as_of.desc(), t.c.id.desc()).limit(1))
        return found[0] if found else None

    def series(self, model: str, name: str, since: date | None = None) -> list[FigurePoint]:
        """One figure over time: every stored value of ``name`` with its labels, oldest first."""
        c, f = self.checks_table, self.figures_table
        query = (
            sa.select(c.c.id, c.c.model, c.c.version, c.c.as_of, f.c.labels, f.c.value)
            .join(f, f.c.check_id == c.c.id)
            .where(c.c.model == model, f.c.name == name)
        )
        if since is not None:
            query = query.where(c.c.as_of >= since)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(c.c.as_of, c.c.id)).all()
        return [
            FigurePoint(int(i), m, v, d, json.loads(labels), float(value))
            for i, m, v, d, labels, value in rows
        ]

    def places_weeks(self, model: str, version: str | None = None) -> list[WeekTotal]:
        """The realised weeks of the places checks, oldest first: each forecast week once,
        as the newest check that judged it counted it (later deliveries can add late
        registrations, so the newest count is the one kept)."""
        return merge_places_weeks([c.result for c in self.checks(model, version=version)])

    def latest_figures(self, model: str | None = None) -> list[tuple[str, str, Figure]]:
        """(model, version, figure) of the newest check of each model (or of ``model``)."""
        c, f = self.checks_table, self.figures_table
        newest = sa.select(sa.func.max(c.c.id)).group_by(c.c.model)
        if model is not None:
            newest = newest.where(c.c.model == model)
        query = (
            sa.select(c.c.model, c.c.version, f.c.name, f.c.labels, f.c.value)
            .join(f, f.c.check_id == c.c.id)
            .where(c.c.id.in_(newest))
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [(m, v, Figure(n, json.loads(lab), float(val))) for m, v, n, lab, val in rows]


def merge_places_weeks(results: list[CheckResult]) -> list[WeekTotal]:
    """The realised weeks of ``results`` (oldest check first), each week once as the newest
    check counted it, oldest week first."""
    weeks: dict[date, WeekTotal] = {}
    for r in results:
        for w in r.places.realised.weekly if r.places and r.places.realised else []:
            weeks[w.week_start] = w
    return [weeks[d] for d in sorted(weeks)]


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def open_monitoring_store(
    settings: Settings | None = None, *, schema: str | None = None
) -> MonitoringStore:
    """The deployment's store: ``RISKCAST_DATABASE_URL``, else SQLite under the home."""
    settings = settings or get_settings()
    if settings.database_url is None:
        settings.home.mkdir(parents=True, exist_ok=True)
    return MonitoringStore(settings.effective_database_url, schema=schema)
