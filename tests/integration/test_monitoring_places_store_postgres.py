"""The places part of a check on the PostgreSQL monitoring store (its own schema): kept and read
back typed, its figures as time series, its alerts counted with the breaches, and the realised
weeks merged across checks (each week as the newest check counted it)."""

from __future__ import annotations

from datetime import timedelta

from fairness.monitoring.store import MonitoringStore
from riskcast.names import PLACES_MODEL
from tests.unit.fairness.test_monitoring_places import T0, _check


def test_places_checks_on_postgres(pg_url: str, schema: str) -> None:
    store = MonitoringStore(pg_url, schema=schema)
    assert store.engine.dialect.name == "postgresql"
    first, _ = _check(2, None, T0 + timedelta(weeks=9))
    second, _ = _check(1, "south", T0 + timedelta(weeks=10))
    kept = [store.record(first), store.record(second)]
    read = store.checks(PLACES_MODEL)
    assert [c.result for c in read] == [first, second]
    assert second.places is not None and second.places.alerts
    with store.engine.connect() as conn:
        counted = (
            conn.execute(
                store.checks_table.select().with_only_columns(store.checks_table.c.breaches)
            )
            .scalars()
            .all()
        )
    assert counted == [first.alert_count, second.alert_count] and counted[1] > counted[0]
    assert kept[1].breach_count == len(second.breaches)
    series = store.series(PLACES_MODEL, "places_count_ratio")
    south = [p for p in series if p.labels == {"group_column": "district", "group": "south",
                                                "bound": "value"}]  # fmt: skip
    assert [p.as_of for p in south] == [first.as_of, second.as_of]
    assert south[1].value > 1.7 > south[0].value
    weeks = store.places_weeks(PLACES_MODEL)
    assert second.places.realised is not None
    assert weeks == second.places.realised.weekly  # the same weeks: the newest check's counts
    store.dispose()
