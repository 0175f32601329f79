"""The monitoring store on PostgreSQL (its own schema): checks kept and read back typed, in
order, by as-of, and one figure's time series."""

from __future__ import annotations

from datetime import date

import numpy as np

from fairness.monitoring.check import run_check
from fairness.monitoring.store import MonitoringStore
from fairness.policy import load_policy
from tests.unit.fairness.test_monitoring_check import _config, _inputs


def test_store_on_postgres(pg_url: str, schema: str) -> None:
    rng = np.random.default_rng(21)
    policy = load_policy()
    store = MonitoringStore(pg_url, schema=schema)
    assert store.engine.dialect.name == "postgresql"
    results = [
        run_check(_inputs(rng, date(2025, 3, 31)), _config(), policy),
        run_check(_inputs(rng, date(2025, 6, 30), "R2"), _config(), policy),
    ]
    kept = [store.record(r) for r in reversed(results)]  # kept out of as-of order
    assert kept[0].id < kept[1].id
    read = store.checks("m")
    assert [c.result for c in read] == results  # oldest as-of first, typed as written
    assert [c.result.as_of for c in store.checks("m", since=date(2025, 4, 1))] == [
        date(2025, 6, 30)
    ]
    latest = store.latest("m")
    assert latest is not None and latest.id == kept[1].id
    assert latest.stored_at.tzinfo is not None
    found = store.at("m", date(2025, 6, 30))
    assert found is not None and found.result == results[1]
    before = store.before("m", date(2025, 6, 30))
    assert before is not None and before.result == results[0]
    series = store.series("m", "mean_probability")
    overall = [p for p in series if p.labels == {"group_column": "all", "group": "all"}]
    assert [p.as_of for p in overall] == [date(2025, 3, 31), date(2025, 6, 30)]
    assert {(m, v) for m, v, _ in store.latest_figures()} == {("m", "1")}
    # a second store on the same schema reads the same checks (the tables are created once)
    again = MonitoringStore(pg_url, schema=schema)
    assert [c.id for c in again.checks("m")] == [c.id for c in read]
    again.dispose()
    store.dispose()
