"""`riskcast monitor` on the tiny trained version made champion (shared session fixture): two
checks a year apart form a time series, the second compares the first's label-free estimate
with the realised performance of the cohort it scored, decisions are reported by outcome, and
breaches become ledger entries of kind monitoring_alert."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from serving.cli import build_app
from tests.model.conftest import Trained, use_home_copy


@pytest.fixture
def home(trained: Trained, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    from fairness.promotion import set_champion
    from riskcast.settings import get_settings
    from training.tracking import tracking_uri

    copy = use_home_copy(trained, monkeypatch, tmp_path)
    set_champion("recidivism-risk", trained.version, tracking_uri(copy))
    yield copy
    get_settings.cache_clear()


def _decide(home: Path, person_ids: list[str]) -> None:
    from serving.db import decisions, open_engine

    engine = open_engine(f"sqlite:///{home / 'riskcast.sqlite'}")
    at = datetime(2025, 1, 20, tzinfo=UTC)
    actions = ["contacted", "referred", "no_action"]
    with engine.begin() as conn:
        conn.execute(
            sa.insert(decisions),
            [
                {
                    "recorded_at": at,
                    "officer": "ana" if i % 2 else "bo",
                    "person_id": pid,
                    "region": "R1",
                    "action": actions[i % 3],
                    "measure_id": "m" if actions[i % 3] == "referred" else None,
                    "override": i % 5 == 0,
                }
                for i, pid in enumerate(person_ids)
            ],
        )
    engine.dispose()


def test_monitor_keeps_checks_compares_estimates_and_records_alerts(
    trained: Trained, home: Path
) -> None:
    from fairness.ledger import open_ledger
    from fairness.monitoring.store import open_monitoring_store
    from fairness.policy import load_policy

    app, runner = build_app(), CliRunner()
    first = runner.invoke(app, ["monitor", "--as-of", "2024-12-31"])
    assert first.exit_code == 0, first.output + repr(first.exception)
    assert "estimated AUC" in first.output

    store = open_monitoring_store()
    [check1] = store.checks("recidivism-risk")
    r1 = check1.result
    assert r1.version == trained.version and r1.as_of == date(2024, 12, 31)
    assert "audited on" in r1.reference and r1.n_reference > 0
    assert r1.tiers == {t.name: t.min_probability for t in trained.model.tiers}
    assert load_policy().threshold in r1.thresholds
    assert {e.group_column for e in r1.estimate} >= {"all", "sex", "region"}
    assert r1.input_drift and r1.scores and r1.composition
    # the reference is the test snapshot itself (2024-12-31): scored alike, no score drift
    overall = next(s for s in r1.scores if s.group_column == "all")
    assert overall.drift is not None and overall.drift.psi is not None
    assert overall.drift.psi < 0.01

    cohort = store.checks("recidivism-risk")[0]
    ids = [str(i) for i in range(1, 400)]  # persons ids of the simulator are 1..N
    _decide(home, ids)
    second = runner.invoke(app, ["monitor", "--as-of", "2025-12-31"])
    assert second.exit_code == 0, second.output + repr(second.exception)
    checks = store.checks("recidivism-risk")
    assert [c.result.as_of for c in checks] == [date(2024, 12, 31), date(2025, 12, 31)]
    r2 = checks[1].result
    assert r2.matured is not None, r2.matured_note
    assert r2.matured.as_of == date(2024, 12, 31)  # one horizon back: the first check's date
    assert r2.matured.estimate_as_of == cohort.result.as_of
    overall_check = next(c for c in r2.matured.comparison if c.group_column == "all")
    auc = next(m for m in overall_check.metrics if m.metric == "auc")
    assert auc.realised is not None and auc.estimated is not None
    assert {d.action for d in r2.decisions if d.level == "all"} == {
        "contacted",
        "referred",
        "no_action",
    }
    assert "not causal" in r2.matured.outcomes_note
    assert store.series("recidivism-risk", "estimated_auc")

    # the materialize hook the command root attached runs the same check for its date
    from features.frames.cli import AFTER_MATERIALIZE

    [hook] = [h for h in AFTER_MATERIALIZE if getattr(h, "monitoring", False)]
    hook(date(2025, 6, 30))
    checks = store.checks("recidivism-risk")
    assert [c.result.as_of for c in checks][1] == date(2025, 6, 30)

    alerts = open_ledger().entries(kind="monitoring_alert")
    expected = sum(bool(c.result.breaches) + bool(c.result.reaudit) for c in checks)
    assert len(alerts) == expected
    store.dispose()
