"""`riskcast monitor` on a small simulated home whose only champion is a places model: trained
on the delivery as extracted at the end of September, promoted, then the December delivery
arrives; the check as of late December keeps the places part (input drift of every cell
feature: the last weeks against the same weeks a year before; realised weeks after the audited
test weeks with the observed/forecast ratios per district) in the monitoring store, and its
alerts in the ledger. `riskcast features materialize` runs the places check through its hook."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from features.ingest import ingest_delivery
from features.simulator import simulate
from serving.cli import build_app
from tests.service_helpers import environment
from tests.unit.training.test_places_end_to_end import SMALL, _cut_delivery

CUT = date(2025, 9, 28)  # a Sunday: the training store ends here
CHECK = date(2025, 12, 28)  # the check: thirteen weeks of new deliveries later


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from fairness.promotion import set_champion
    from riskcast.names import PLACES_MODEL
    from training.tracking import tracking_uri

    root = tmp_path_factory.mktemp("places-monitor")
    delivery, home = root / "d1", root / "home"
    simulate(
        delivery,
        persons=20_000,
        seed=13,
        start=date(2019, 1, 1),
        extracted_at=date(2025, 12, 31),
        as_of=[date(2024, 12, 31)],
    )
    ingest_delivery(_cut_delivery(delivery, root / "cut", CUT), home)
    config = root / "places_training.yaml"
    config.write_text(yaml.safe_dump(SMALL), encoding="utf-8")
    with environment(RISKCAST_HOME=str(home), MLFLOW_TRACKING_URI=None):
        got = CliRunner().invoke(build_app(), ["places", "train", "--config", str(config)])
        assert got.exit_code == 0, got.output + repr(got.exception)
        set_champion(PLACES_MODEL, "1", tracking_uri(home))
        ingest_delivery(delivery, home)  # the deliveries after training
        yield home


def test_monitor_checks_the_places_champion(home: Path) -> None:
    from fairness.ledger import open_ledger
    from fairness.monitoring.store import open_monitoring_store
    from riskcast.names import PLACES_MODEL
    from riskcast.settings import get_settings

    with environment(RISKCAST_HOME=str(home), MLFLOW_TRACKING_URI=None):
        get_settings.cache_clear()
        got = CliRunner().invoke(build_app(), ["monitor", "--as-of", str(CHECK)])
        assert got.exit_code == 0, got.output + repr(got.exception)
        assert "persons: not checked" in got.output
        assert f"{PLACES_MODEL} v1 as of {CHECK}" in got.output
        assert "observed/forecast" in got.output
        store = open_monitoring_store()
        try:
            kept = store.latest(PLACES_MODEL)
            weeks = store.places_weeks(PLACES_MODEL)
        finally:
            store.dispose()
        ledger = open_ledger()
        try:
            alerts = [
                e
                for e in ledger.entries()
                if e.kind == "monitoring_alert" and PLACES_MODEL in e.version
            ]
        finally:
            ledger.dispose()
        get_settings.cache_clear()
    assert kept is not None
    r = kept.result
    assert r.as_of == CHECK and r.places is not None and r.places.realised is not None
    real = r.places.realised
    # every realised week is after the audited test weeks and ended by the check date
    assert real.first_week > CUT and (real.last_week - CHECK).days <= -7
    assert 1 <= real.weeks <= 8 and len(weeks) == real.weeks
    assert all(w.observed >= 0 and w.expected > 0 for w in weeks)
    assert real.pai.audited is not None and real.pai.audited > 1
    groups = {(c.group_column, c.group) for c in real.ratios}
    assert ("all", "all") in groups and any(c == "district" for c, _ in groups)
    assert r.input_drift == []  # no PSI of the forecast against the audited (other) season
    score = r.places.score_drift  # the forecast now vs its forecast of the weeks a year before
    assert score is not None and {d.input for d in score.rows} == {"expected_count"}
    assert score.reference_origins[-1] == date(2024, 12, 29) and score.band == (0.8, 1.2)
    assert r.places.drift_history is not None and r.places.drift_history.enough
    drift = r.places.input_drift
    assert drift is not None, r.places.drift_note
    assert len({d.input for d in drift.rows}) > 5  # the cell features
    assert {d.group_column for d in drift.rows} >= {"all", "region", "district"}
    assert drift.current_origins[-1] == CHECK
    assert drift.reference_origins[-1] == date(2024, 12, 29)  # 52 weeks before
    assert (kept.breach_count > 0) == bool(r.breaches)
    assert (r.alert_count > 0) == bool(alerts)


def test_materialize_runs_the_places_check_through_its_hook(home: Path) -> None:
    """The hook the command root attaches to `riskcast features materialize` checks the places
    champion as of the materialised date (no person champion here: only places)."""
    from fairness.monitoring.store import open_monitoring_store
    from riskcast.names import PLACES_MODEL
    from riskcast.settings import get_settings

    day = date(2025, 12, 21)
    with environment(RISKCAST_HOME=str(home), MLFLOW_TRACKING_URI=None):
        get_settings.cache_clear()
        got = CliRunner().invoke(
            build_app(), ["features", "materialize", "--as-of", str(day)], catch_exceptions=False
        )
        assert got.exit_code == 0, got.output
        store = open_monitoring_store()
        try:
            kept = store.latest(PLACES_MODEL)
        finally:
            store.dispose()
        get_settings.cache_clear()
    assert f"monitor: {PLACES_MODEL} check" in got.output
    assert kept is not None and kept.result.as_of == day
    assert kept.result.places is not None and kept.result.places.input_drift is not None


def test_a_check_whose_reference_weeks_predate_the_store_says_insufficient_history(
    home: Path,
) -> None:
    """The store starts in January 2019; a check as of late 2022 needs the reference weeks
    (late 2021) with their 156-week windows, incidents from November 2018: it says so, builds
    no reference, compares nothing and raises no drift alert."""
    from fairness.monitoring.store import open_monitoring_store
    from riskcast.names import PLACES_MODEL
    from riskcast.settings import get_settings

    early = date(2022, 12, 25)
    with environment(RISKCAST_HOME=str(home), MLFLOW_TRACKING_URI=None):
        get_settings.cache_clear()
        got = CliRunner().invoke(build_app(), ["monitor", "--as-of", str(early)])
        assert got.exit_code == 0, got.output + repr(got.exception)
        store = open_monitoring_store()
        try:
            kept = store.at(PLACES_MODEL, early)
        finally:
            store.dispose()
        get_settings.cache_clear()
    assert kept is not None and kept.result.places is not None
    p = kept.result.places
    assert p.input_drift is None and p.drift_history is not None and not p.drift_history.enough
    assert p.drift_history.store_starts is not None
    assert p.drift_history.needed_from < p.drift_history.store_starts <= date(2019, 1, 31)
    assert p.drift_note is not None and p.drift_note.startswith("insufficient history")
    assert not [b for b in kept.result.breaches if b.kind == "input_drift"]
