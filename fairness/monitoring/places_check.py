"""One monitoring check of the places champion, from frames (pure).

`run_places_check` puts together what `riskcast monitor` computes for the places model:

- **score drift** of the forecast (expected count per cell and week, horizon 1) against the
  test predictions the champion was audited on (`check.run_score_drift_check`, unchanged);
- **input drift** of every cell-feature model input (`places_drift.places_input_drift`,
  settings ``places.drift`` in configs/monitoring.yaml): the mean per cell-week over a window
  of recent weekly origins (the check date and the weeks before it) against the same origins a
  year before (the same weeks of the year: the season cancels), as quasi-Poisson rate ratios
  overall and per region and district, an alert when Benjamini-Hochberg over all tests keeps it
  and the ratio leaves the band. (PSI + KS per district of one week against the 26 audited
  test weeks, the person rule, raised 717 alerts on a store where nothing had changed.)
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

from fairness.monitoring.alerts import Breach, reaudit_due
from fairness.monitoring.check import CheckResult, run_score_drift_check
from fairness.monitoring.config import MonitoringConfig
from fairness.monitoring.places import monitor_realised
from fairness.monitoring.places_drift import PlacesDrift, places_input_drift
from fairness.policy import PlacesPolicy


@dataclass(frozen=True)
class PlacesCheckInputs:
    """What the command read: forecasts (``expected_count, region, district``), the cell
    frames with the model ``inputs`` (the drift window's origins, ``current_features``, and
    the same origins a year before, ``reference_features``; None: not available, with
    ``drift_note`` saying why), and the realised cell-weeks (see `places`)."""

    model: str
    version: str
    as_of: date
    reference_note: str
    reference_scores: pl.DataFrame  # the audited test predictions (horizon 1)
    current_scores: pl.DataFrame  # the forecast as of the check (horizon 1)
    reference_features: pl.DataFrame | None  # the window's origins a year before
    current_features: pl.DataFrame  # the window's origins (the check date and the weeks before)
    inputs: Sequence[str]
    realised: pl.DataFrame | None = None
    realised_note: str | None = None
    audited_pai: float | None = None
    previous_breaches: Sequence[Breach] | None = None
    drift_note: str | None = None


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
    drift = (
        places_input_drift(
            x.reference_features,
            x.current_features,
            list(x.inputs),
            settings.drift,
            settings.group_columns,
        )
        if x.reference_features is not None and x.reference_features.height
        else None
    )
    breaches = drift_breaches(drift) + list(scored.breaches)
    places = monitor_realised(
        x.realised,
        settings,
        audited_pai=x.audited_pai,
        policy=policy,
        note=x.realised_note,
        drift=drift,
        drift_note=x.drift_note if drift is None else None,
    )
    return scored.model_copy(
        update={
            "input_drift": list(scored.input_drift),  # the score's; the inputs' are in places
            "breaches": breaches,
            "reaudit": reaudit_due(breaches, x.previous_breaches),
            "places": places,
        }
    )


def drift_breaches(drift: PlacesDrift | None) -> list[Breach]:
    """The input drift alerts as breaches of kind ``input_drift`` (figure ``rate_ratio:x``)."""
    if drift is None:
        return []
    low, high = drift.band
    return [
        Breach(
            kind="input_drift",
            figure=f"rate_ratio:{r.input}",
            group_column=r.group_column,
            group=r.group,
            value=r.ratio,
            threshold=high if (r.ratio or 0) > high else low,
            message=(
                f"{r.input} in {r.group_column}={r.group}: mean per cell-week {r.mean_current:.3g}"
                f" over the last {len(drift.current_origins)} weeks vs {r.mean_reference:.3g} a "
                f"year before, ratio {r.ratio or 0:.2f} [{r.lower or 0:.2f}, {r.upper or 0:.2f}]"
                f" outside [{low:g}, {high:g}] (BH q={r.q_value or 0:.2g})"
            ),
        )
        for r in drift.alerts()
    ]
