"""The places part of `riskcast monitor` on tiny hand-made cell frames: input drift and the
observed/forecast ratio alert for the district whose counts doubled, none for the unchanged
control; PAI against the audited value; the figures, the store and the ledger's count."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from fairness.monitoring.check import CheckResult, figures
from fairness.monitoring.cli import record_alerts
from fairness.monitoring.config import MonitoringConfig, load_monitoring_config
from fairness.monitoring.places import (
    count_ratios,
    mean_pai,
    monitor_realised,
    poisson_interval,
)
from fairness.monitoring.places_check import PlacesCheckInputs, run_places_check
from fairness.monitoring.places_cli import realised_origins
from fairness.monitoring.places_config import PlacesMonitoringSettings
from fairness.monitoring.places_drift import DriftHistory, drift_history
from fairness.monitoring.store import MonitoringStore, StoredCheck
from fairness.policy import load_policy
from tests.service_helpers import environment
from training.places.plan import sunday_on_or_before

CELLS = 60  # per district
DISTRICTS = ("north", "south", "east", "west", "harbour", "hills")  # the drift rule estimates
# its noise across districts: five or more
T0 = date(2025, 3, 2)  # a Sunday


def _cells(rng: np.random.Generator) -> pl.DataFrame:
    rows = [(f"{d}-{i:03d}", "R1", d) for d in DISTRICTS for i in range(CELLS)]
    frame = pl.DataFrame(rows, schema=["cell_id", "region", "district"], orient="row")
    return frame.with_columns(
        pl.Series("mu", rng.lognormal(-1.0, 0.9, frame.height)),
        pl.lit(0.2).alias("area_km2"),
    )


def _features(
    cells: pl.DataFrame, rng: np.random.Generator, origins: list[date], double: str | None = None
) -> pl.DataFrame:
    """One row per (cell, origin): last-4-week counts drawn from 4 x the cell's rate, doubled
    in district ``double``; a district share that does not move."""
    parts = []
    for t in origins:
        scale = np.where(cells["district"].to_numpy() == double, 2.0, 1.0)
        parts.append(
            cells.with_columns(
                pl.lit(t).alias("as_of"),
                pl.Series("count_4w", rng.poisson(4 * cells["mu"].to_numpy() * scale) * 1.0),
                pl.Series("share_district", rng.uniform(0.4, 0.6, cells.height)),
            )
        )
    return pl.concat(parts)


def _realised(
    cells: pl.DataFrame, rng: np.random.Generator, weeks: int, double: str | None = None
) -> pl.DataFrame:
    """Forecast cell-weeks (expected = the cell's rate) and the counts registered later."""
    parts = []
    for k in range(weeks):
        t = T0 + timedelta(weeks=k)
        scale = np.where(cells["district"].to_numpy() == double, 2.0, 1.0)
        parts.append(
            cells.with_columns(
                pl.lit(t).alias("as_of"),
                pl.lit(t + timedelta(days=1)).alias("week_start"),
                pl.col("mu").alias("expected_count"),
                pl.Series("observed", rng.poisson(cells["mu"].to_numpy() * scale)),
            )
        )
    return pl.concat(parts)


def _config() -> MonitoringConfig:
    """The shipped config, the evidence read on the frames' count (they hold no 13-week one)."""
    config = load_monitoring_config()
    drift = config.places.drift.model_copy(update={"evidence_input": "count_4w"})
    places = config.places.model_copy(update={"drift": drift})
    return config.model_copy(update={"places": places})


def _check(
    seed: int,
    double: str | None,
    as_of: date = T0 + timedelta(weeks=9),
    history: DriftHistory | None = None,
) -> tuple[CheckResult, MonitoringConfig]:
    rng = np.random.default_rng(seed)
    cells = _cells(rng)
    reference = _features(cells, rng, [T0 - timedelta(weeks=k) for k in range(1, 5)])
    current = _features(cells, rng, [T0 + timedelta(weeks=9)], double=double)
    realised = _realised(cells, rng, 8, double=double)
    config = _config()
    audited_frame = _realised(cells, rng, 8)
    result = run_places_check(
        PlacesCheckInputs(
            model="street-crime",
            version="1",
            as_of=as_of,
            reference_note="hand-made",
            reference_scores=reference.with_columns(pl.col("mu").alias("expected_count")),
            current_scores=current.with_columns(pl.col("mu").alias("expected_count")),
            reference_features=reference.with_columns(pl.col("mu").alias("expected_count")),
            current_features=current.with_columns(pl.col("mu").alias("expected_count")),
            inputs=["count_4w", "share_district"],
            realised=realised,
            audited_pai=mean_pai(audited_frame, config.places.area_share),
            history=history,
        ),
        config,
        load_policy().places,
    )
    return result, config


def keep_places_checks(home: Path) -> list[StoredCheck]:
    """Two places checks kept in ``home``'s monitoring store (the first unchanged, the second
    with district south's counts doubled), their alerts in its ledger."""
    store = MonitoringStore(f"sqlite:///{(home / 'riskcast.sqlite').resolve()}")
    try:
        kept = [
            store.record(_check(2, None, T0 + timedelta(weeks=9))[0]),
            store.record(_check(1, "south", T0 + timedelta(weeks=10))[0]),
        ]
    finally:
        store.dispose()
    with environment(RISKCAST_HOME=str(home), RISKCAST_DATABASE_URL=None):
        for stored in kept:
            record_alerts(stored, by="riskcast-monitor")
    return kept


def test_a_district_whose_counts_double_drifts_and_breaks_the_ratio_band() -> None:
    result, _ = _check(1, double="south")
    assert result.places is not None and result.places.realised is not None
    drifted = {(b.figure, b.group) for b in result.breaches if b.kind == "input_drift"}
    assert ("rate_ratio:count_4w", "south") in drifted
    assert ("rate_ratio:count_4w", "north") not in drifted
    assert not any(f == "rate_ratio:share_district" for f, _ in drifted)
    alerts = {(a.kind, a.group_column, a.group) for a in result.places.alerts}
    assert ("count_ratio", "district", "south") in alerts
    assert ("count_ratio", "district", "north") not in alerts
    south = next(r for r in result.places.realised.ratios if r.group == "south")
    assert south.ratio is not None and south.lower is not None
    assert 1.7 < south.ratio < 2.3 and south.lower > 1.25
    assert result.alert_count == len(result.breaches) + len(result.places.alerts)


def short_history() -> DriftHistory:
    """A store that starts too late for the reference weeks' longest window."""
    reference = [T0 - timedelta(weeks=k) for k in range(1, 5)]
    return drift_history(reference, 156, T0 - timedelta(weeks=100), 52)


def test_a_store_too_short_for_the_reference_says_so_and_never_alerts() -> None:
    """The doubled district alerts with the history (above); without it nothing is compared:
    no drift row, no input drift breach, and the note names what is needed and what is held."""
    history = short_history()
    assert not history.enough
    result, _ = _check(1, double="south", history=history)
    p = result.places
    assert p is not None and p.input_drift is None
    assert [b for b in result.breaches if b.kind == "input_drift"] == []
    assert p.drift_history == history
    assert p.drift_note is not None and p.drift_note.startswith("insufficient history")
    assert history.needed_from.isoformat() in p.drift_note
    assert (T0 - timedelta(weeks=100)).isoformat() in p.drift_note  # where the store starts
    assert not any(f.name == "places_input_rate_ratio" for f in figures(result))
    assert p.realised is not None and p.alerts  # the realised part is judged as before


def test_the_unchanged_control_raises_nothing() -> None:
    result, _ = _check(2, double=None)
    assert [b for b in result.breaches if b.kind == "input_drift"] == []
    assert result.places is not None and result.places.realised is not None
    assert result.places.alerts == []
    misses = 0  # 95 % intervals of 8 groups: one may miss 1 by chance, none leaves the band
    for r in result.places.realised.ratios:
        assert r.lower is not None and r.upper is not None and r.status != "alert"
        misses += not r.lower < 1 < r.upper
    assert misses <= 1


def test_pai_alert_when_the_ranking_is_lost_not_when_it_holds() -> None:
    rng = np.random.default_rng(3)
    cells = _cells(rng)
    settings = PlacesMonitoringSettings()
    good = _realised(cells, rng, 8)
    audited = mean_pai(good, settings.area_share)
    assert audited is not None and audited > 2  # the rates rank the cells
    kept = monitor_realised(good, settings, audited_pai=audited)
    assert [a for a in kept.alerts if a.kind == "pai"] == []
    scrambled = good.with_columns(
        pl.Series("expected_count", rng.permutation(good["expected_count"].to_numpy()))
    )
    lost = monitor_realised(scrambled, settings, audited_pai=audited)
    pai = [a for a in lost.alerts if a.kind == "pai"]
    assert len(pai) == 1 and pai[0].value is not None and pai[0].value < 0.7 * audited


def test_a_small_group_is_insufficient_evidence_and_the_poisson_interval_is_exact() -> None:
    frame = pl.DataFrame(
        {
            "week_start": [date(2025, 3, 3)] * 2,
            "district": ["a", "b"],
            "expected_count": [2.0, 50.0],
            "observed": [8, 50],
        }
    )
    ratios = {r.group: r for r in count_ratios(frame, ["district"], PlacesMonitoringSettings())}
    assert ratios["a"].status == "insufficient evidence" and ratios["a"].ratio == 4.0
    assert ratios["b"].status == "ok"
    lo, hi = poisson_interval(0, 0.95)
    assert lo == 0.0 and hi == pytest.approx(3.689, abs=1e-3)


def test_realised_origins_are_after_the_test_weeks_and_have_ended() -> None:
    day = date(2025, 6, 1)  # a Sunday: the week of the origin 7 days before ends that day
    got = realised_origins(day, date(2025, 4, 27), 8, sunday_on_or_before)
    assert got == [date(2025, 5, 4), date(2025, 5, 11), date(2025, 5, 18)]
    for t in got:
        assert t + timedelta(days=8) <= day


def test_figures_and_the_store_keep_the_places_part(tmp_path: Path) -> None:
    result, _ = _check(1, double="south")
    names = {f.name for f in figures(result)}
    assert {"places_count_ratio", "places_pai", "places_deviance"} <= names
    assert {"places_input_rate_ratio", "places_score_ratio"} <= names  # the inputs', the score's
    assert "input_psi" not in names  # no PSI of the forecast against the audited weeks
    kinds = {f.labels["kind"]: f.value for f in figures(result) if f.name == "breaches"}
    assert kinds["count_ratio"] >= 1
    store = MonitoringStore(f"sqlite:///{tmp_path / 'm.sqlite'}")
    kept = store.record(result)
    back = store.latest("street-crime")
    assert back is not None and back.result == kept.result
    assert back.result.places is not None and back.result.places.alerts
    weeks = store.places_weeks("street-crime")
    assert len(weeks) == 8 and weeks == sorted(weeks, key=lambda w: w.week_start)
    series = store.series("street-crime", "places_count_ratio")
    assert any(p.labels.get("group") == "south" for p in series)
    store.dispose()
