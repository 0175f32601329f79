"""One monitoring check of the places champion, from frames (pure).

`run_places_check` puts together what `riskcast monitor` computes for the places model:

- **score drift** of the forecast (expected count per cell and week, horizon 1) against the
  test predictions the champion was audited on (`check.run_score_drift_check`, unchanged);
- **input drift** of every cell-feature model input (PSI + KS, missing share) between the
  reference, the cell frame of the champion's test origins (its audited test period, rebuilt
  point-in-time from the store), and the cell frame as of the check, overall and per region
  and district (`drift.input_drift`, thresholds from ``drift`` in configs/monitoring.yaml);
- **realised performance** of the forecasts made for the weeks that have passed since
  (`places.monitor_realised`): deviance, PAI against the audited value, observed / forecast
  per region and district with intervals, exposure by district.

Drift breaches are `alerts.Breach` entries of the check; the realised alerts are the places
part's own (kinds ``count_ratio`` and ``pai``), counted with them by the store and the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import polars as pl

from fairness.monitoring.alerts import Breach, drift_breaches, reaudit_due
from fairness.monitoring.check import CheckResult, run_score_drift_check
from fairness.monitoring.config import MonitoringConfig
from fairness.monitoring.drift import input_drift
from fairness.monitoring.places import monitor_realised
from fairness.policy import PlacesPolicy


@dataclass(frozen=True)
class PlacesCheckInputs:
    """What the command read: forecasts (``expected_count, region, district``), the cell
    frames with the model ``inputs``, and the realised cell-weeks (see `places`)."""

    model: str
    version: str
    as_of: date
    reference_note: str
    reference_scores: pl.DataFrame  # the audited test predictions (horizon 1)
    current_scores: pl.DataFrame  # the forecast as of the check (horizon 1)
    reference_features: pl.DataFrame  # the cell frame of the test origins
    current_features: pl.DataFrame  # the cell frame as of the check
    inputs: Sequence[str]
    realised: pl.DataFrame | None = None
    realised_note: str | None = None
    audited_pai: float | None = None
    previous_breaches: Sequence[Breach] | None = None


def run_places_check(
    x: PlacesCheckInputs, config: MonitoringConfig, policy: PlacesPolicy | None = None
) -> CheckResult:
    """Score drift, input drift and realised performance of the places champion."""
    settings = config.places
    scored = run_score_drift_check(
        model=x.model,
        version=x.version,
        as_of=x.as_of,
        reference_note=x.reference_note,
        reference=x.reference_scores,
        current=x.current_scores,
        score="expected_count",
        group_columns=settings.group_columns,
        config=config,
        previous_breaches=x.previous_breaches,
    )
    groups = [
        c
        for c in settings.group_columns
        if c in x.current_features.columns and c in x.reference_features.columns
    ]
    drift = input_drift(
        x.reference_features, x.current_features, list(x.inputs), config.drift, groups
    )
    breaches = drift_breaches(drift.results, "input_drift") + list(scored.breaches)
    places = monitor_realised(
        x.realised,
        settings,
        audited_pai=x.audited_pai,
        policy=policy,
        note=x.realised_note,
    )
    return scored.model_copy(
        update={
            "input_drift": [*drift.results, *scored.input_drift],
            "n_reference": x.reference_features.height,
            "n_current": x.current_features.height,
            "breaches": breaches,
            "reaudit": reaudit_due(breaches, x.previous_breaches),
            "places": places,
        }
    )
