"""`riskcast monitor`, registered by the command root with what only the service has: its
decisions table (the fairness stage may not import the service), and the hook that runs a
check after each `riskcast features materialize`."""

from __future__ import annotations

from datetime import date

import polars as pl
import sqlalchemy as sa
import typer

from fairness.monitoring import cli as monitoring_cli
from features.frames import cli as features_cli

DECISION_SCHEMA: dict[str, pl.DataType] = {
    "person_id": pl.String(),
    "officer": pl.String(),
    "unit": pl.String(),
    "action": pl.String(),
    "override": pl.Boolean(),
    "recorded_at": pl.Datetime("us", "UTC"),
}


def decisions_frame() -> pl.DataFrame:
    """Every decision in the service's table, oldest first, in the columns the monitoring check
    reads (the region is the unit)."""
    from riskcast.settings import get_settings
    from serving.db import decisions, open_engine

    engine = open_engine(get_settings().effective_database_url)
    t = decisions
    query = sa.select(
        t.c.person_id, t.c.officer, t.c.region, t.c.action, t.c.override, t.c.recorded_at
    ).order_by(t.c.recorded_at, t.c.id)
    try:
        with engine.connect() as conn:
            rows = conn.execute(query).all()
    finally:
        engine.dispose()
    return pl.DataFrame([tuple(r) for r in rows], schema=DECISION_SCHEMA, orient="row")


def places_forecast() -> tuple[str, date, pl.DataFrame] | None:
    """The places forecast the service answers from (horizon 1): its model version, as-of and
    rows, or None when nothing is materialised."""
    from riskcast.settings import get_settings
    from serving.db import open_engine
    from serving.places.store import forecasts, materializations

    engine = open_engine(get_settings().effective_database_url)
    m, f = materializations, forecasts
    try:
        with engine.connect() as conn:
            head = conn.execute(sa.select(m).order_by(m.c.id.desc()).limit(1)).mappings().first()
            if head is None:
                return None
            query = sa.select(f.c.region, f.c.district, f.c.expected_count).where(
                f.c.materialization == head["id"], f.c.horizon == 1
            )
            rows = conn.execute(query).all()
    except sa.exc.SQLAlchemyError:
        return None  # no places tables: nothing materialised
    finally:
        engine.dispose()
    schema = {"region": pl.String(), "district": pl.String(), "expected_count": pl.Float64()}
    frame = pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")
    return str(head["model_version"]), head["as_of"], frame


def register(app: typer.Typer) -> None:
    """`riskcast monitor`, and a check after every materialisation (once per process): after
    `riskcast features materialize` of each model with a champion (persons, places), after
    `riskcast places materialize` of the places champion."""
    from serving.places import cli as places_cli

    monitoring_cli.register(app, decisions=decisions_frame, forecast=places_forecast)
    if not any(getattr(h, "monitoring", False) for h in features_cli.AFTER_MATERIALIZE):
        hook = monitoring_cli.monitor_after_materialize(decisions_frame, places_forecast)
        hook.monitoring = True  # type: ignore[attr-defined]
        features_cli.AFTER_MATERIALIZE.append(hook)
    if not any(getattr(h, "monitoring", False) for h in places_cli.AFTER_MATERIALIZE):
        places_hook = monitoring_cli.monitor_after_materialize(
            decisions_frame, places_forecast, persons=False
        )
        places_hook.monitoring = True  # type: ignore[attr-defined]
        places_cli.AFTER_MATERIALIZE.append(places_hook)
