"""One monitoring check of the places champion, from frames (pure).

`run_places_check` puts together what `riskcast monitor` computes for the places model:

- **score drift** of the forecast (expected count per cell and week, horizon 1): its mean per
  cell-week over the drift window against the champion's forecast for the same weeks a year
  before, by the input drift's rate-ratio rule with the band ``drift.score_mean_ratio_alert``
  (`places_scores`). (PSI + KS against the audited test weeks, with the mean-ratio gate, raised
  3 breaches on the no-drift store: the test weeks are another season.)
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
from datetime import UTC, date, datetime

import polars as pl

from fairness.monitoring.alerts import Breach, reaudit_due
from fairness.monitoring.check import CheckResult
from fairness.monitoring.config import MonitoringConfig
from fairness.monitoring.places import monitor_realised
from fairness.monitoring.places_drift import DriftHistory, PlacesDrift, places_input_drift
from fairness.monitoring.places_scores import SCORE, places_score_drift, score_breaches
from fairness.policy import PlacesPolicy


@dataclass(frozen=True)
class PlacesCheckInputs:
    """What the command read: forecasts (``expected_count, region, district``), the cell
    frames with the model ``inputs`` and the champion's forecast ``expected_count`` (the drift
    window's origins, ``current_features``, and the same origins a year before,
    ``reference_features``; None: not available, with ``drift_note`` saying why), and the
    realised cell-weeks (see `places`). ``reference_scores``, the audited test predictions, are
    named in the reference note, not compared (another season)."""

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
    # whether the store holds the reference weeks' history (`places_drift.drift_history`);
    # not enough: nothing is compared, the check says "insufficient history"
    history: DriftHistory | None = None


def run_places_check(
    x: PlacesCheckInputs, config: MonitoringConfig, policy: PlacesPolicy | None = None
) -> CheckResult:
    """Score drift, input drift and realised performance of the places champion."""
    settings = config.places
    short = x.history is not None and not x.history.enough
    reference = None if short else x.reference_features
    judged = reference is not None and reference.height > 0
    drift = (
        places_input_drift(
            reference, x.current_features, list(x.inputs), settings.drift, settings.group_columns
        )
        if reference is not None and judged
        else None
    )
    scores = (
        places_score_drift(
            reference,
            x.current_features,
            settings.drift,
            config.drift.score_mean_ratio_alert,
            settings.group_columns,
        )
        if reference is not None and judged
        else None
    )
    note = x.history.message if short and x.history is not None else x.drift_note
    if drift is None and note is None:
        note = "no reference weeks: the cell frames of the weeks a year before are empty"
    breaches = drift_breaches(drift) + score_breaches(scores)
    places = monitor_realised(
        x.realised,
        settings,
        audited_pai=x.audited_pai,
        policy=policy,
        note=x.realised_note,
        drift=drift,
        drift_note=note if drift is None else None,
        history=x.history,
        score_drift=scores,
    )
    return CheckResult(
        model=x.model,
        version=x.version,
        as_of=x.as_of,
        checked_at=datetime.now(UTC),
        reference=x.reference_note,
        n_reference=_rows(reference, judged),
        n_current=x.current_scores.height,
        thresholds=[],
        tiers={},
        input_drift=[],  # the places inputs' drift is the places part's (`input_drift`)
        scores=[],
        composition=[],
        estimate=[],
        matured=None,
        decisions=[],
        breaches=breaches,
        reaudit=reaudit_due(breaches, x.previous_breaches),
        places=places,
    )


def _rows(reference: pl.DataFrame | None, judged: bool) -> int:
    """The reference cell-weeks with a forecast (0: none compared)."""
    if reference is None or not judged or SCORE not in reference.columns:
        return 0
    return int(reference[SCORE].is_not_null().sum())


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
