"""The monitoring gauges of `/metrics` (`serving.metrics.MonitoringCollector`): every figure of
each model's newest check, read from the store at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from fairness.monitoring.check import figures, run_check
from fairness.monitoring.store import open_monitoring_store
from fairness.policy import load_policy
from serving.metrics import MONITORING_PREFIX, AppMetrics
from tests.unit.fairness.test_monitoring_check import _config, _inputs


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    from riskcast.settings import get_settings

    monkeypatch.setenv("RISKCAST_HOME", str(tmp_path))
    monkeypatch.delenv("RISKCAST_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_no_check_no_monitoring_gauges(home: Path) -> None:
    assert MONITORING_PREFIX not in AppMetrics().render().decode()


def test_gauges_follow_the_newest_check(home: Path) -> None:
    rng = np.random.default_rng(9)
    policy = load_policy()
    store = open_monitoring_store()
    store.record(run_check(_inputs(rng, date(2025, 3, 31)), _config(), policy))
    newest = run_check(_inputs(rng, date(2025, 6, 30), "R2"), _config(), policy)
    store.record(newest)
    text = AppMetrics().render().decode()
    names = {f.name for f in figures(newest)}
    for name in names:
        assert f"# TYPE {MONITORING_PREFIX}{name} gauge" in text
    drift = sum(b.kind == "input_drift" for b in newest.breaches)
    assert drift > 0
    line = f'{MONITORING_PREFIX}breaches{{kind="input_drift",model="m",version="1"}} {drift:.1f}'
    assert line in text
    auc = next(e for e in newest.estimate if e.group_column == "sex" and e.group == "F")
    assert auc.auc.value is not None
    assert (
        f'{MONITORING_PREFIX}estimated_auc{{bound="value",group="F",group_column="sex",'
        f'model="m",version="1"}} {auc.auc.value!r}'
    ) in text
    store.dispose()
