"""What `riskcast monitor` prints for a places check (`fairness.monitoring.cli.print_check`):
a line for the input drift (alerts, tests, groups per evidence state), one for the score drift
(breaches, groups tested, band), and the history state when the store is too short to judge
drift, on checks computed by `run_places_check` from the simulated cell frames of the places
drift tests (a stationary delivery, and district 0's counts x1.5)."""

from __future__ import annotations

import io
import re
from datetime import date
from types import SimpleNamespace

import polars as pl
from rich.console import Console

from fairness.monitoring.check import CheckResult
from fairness.monitoring.cli import print_check
from fairness.monitoring.config import MonitoringConfig, load_monitoring_config
from fairness.monitoring.places_check import PlacesCheckInputs, run_places_check
from fairness.monitoring.places_drift import drift_history
from tests.unit.fairness.test_monitoring_places_drift import INPUTS, _counts
from tests.unit.fairness.test_monitoring_places_scores import _frames


def _check(config: MonitoringConfig, change: float, store_starts: date | None) -> CheckResult:
    s = config.places.drift
    reference, current = _frames(*_counts(seed=1, change=change), s)
    day = current["as_of"].max()
    assert isinstance(day, date)
    seasonal = sorted(set(reference["as_of"].to_list()))
    history = drift_history(seasonal, 156, store_starts, s.season_lag_weeks)
    return run_places_check(
        PlacesCheckInputs(
            model="street-crime",
            version="1",
            as_of=day,
            reference_note="the same weeks a year before",
            reference_scores=reference,
            current_scores=current.filter(pl.col("as_of") == day),
            reference_features=reference,
            current_features=current,
            inputs=INPUTS,
            realised_note="no forecast week has ended",
            history=history,
        ),
        config,
    )


def _printed(result: CheckResult) -> str:
    out = io.StringIO()
    print_check(Console(file=out, width=400, soft_wrap=True), SimpleNamespace(id=7, result=result))
    return out.getvalue()


def _line(text: str, start: str) -> str:
    found = [line for line in text.splitlines() if line.startswith(start)]
    assert len(found) == 1, text
    return found[0]


def test_monitor_prints_the_places_drift_lines_with_the_checks_counts() -> None:
    config = load_monitoring_config()
    for change in (1.0, 1.5):
        result = _check(config, change, store_starts=date(2015, 1, 1))
        places = result.places
        assert places is not None and places.input_drift is not None
        assert places.score_drift is not None
        text = _printed(result)
        drift, scores = places.input_drift, places.score_drift
        inputs = _line(text, "input drift (8 weeks vs the same weeks a year before): ")
        alerts, tests = map(int, re.findall(r"(\d+) alerts? of (\d+) tests", inputs)[0])
        assert (alerts, tests) == (len(drift.alerts()), drift.tests)
        assert "band [0.8, 1.25]" in inputs
        states = dict(
            (state, int(n))
            for n, state in re.findall(
                r"(\d+) (insufficient evidence|insufficient for the band|enough for the band)",
                inputs,
            )
        )
        assert sum(states.values()) == len(drift.evidence) > 30  # all, 4 regions, 32 districts
        score = _line(text, "score drift (mean forecast, 8 weeks vs the same weeks a year before)")
        breaches, groups = map(int, re.findall(r"(\d+) breach(?:es)? of (\d+) groups", score)[0])
        assert breaches == len([b for b in result.breaches if b.kind == "score_drift"])
        assert groups == scores.tests and "band [0.8, 1.2]" in score
        # nothing in the stationary delivery; the x1.5 district seen by both rules
        assert alerts > 0 if change > 1 else alerts == 0
        assert breaches > 0 if change > 1 else breaches == 0
        assert "insufficient history" not in text
        assert _line(text, "realised: ") == "realised: no forecast week has ended"


def test_monitor_prints_the_history_state_when_the_store_is_too_short() -> None:
    config = load_monitoring_config()
    late = date(2023, 1, 1)  # the reference weeks start in February 2024: 156 weeks before
    result = _check(config, 1.5, store_starts=late)
    assert result.places is not None and result.places.input_drift is None
    history = result.places.drift_history
    assert history is not None and history.needed_from < late
    text = _printed(result)
    line = _line(text, "drift: insufficient history: ")
    assert f"the store starts at {late}" in line
    assert "input drift (" not in text and "score drift (" not in text
    assert _line(text, "breaches: ") == "breaches: 0"
