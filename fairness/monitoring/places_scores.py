"""Score drift of the places champion: its forecast now against its forecast for the same weeks
a year before, by the input drift's rate-ratio rule (pure).

Why not the person rule (PSI + KS of the score against the audited test predictions, a breach
when the group's mean also moved by ``drift.score_mean_ratio_alert``)? The audited test weeks
are not the weeks of a check: the 26 test origins ran up to late September, a check in late
December forecasts another season, and street crime moves by about a third over the year. On
the simulated store where nothing changed, that rule raised 3 breaches (KAR's rural districts,
mean forecast x1.30-1.55 against the test weeks; bench_monitoring.md, "Places monitoring"), and
it has no noise model: a district's mean over one week of ~100 cells is compared with a fixed
20 % band whatever its count, so a quiet district crosses it by chance alone.

The rule here is the input drift's (`places_drift.places_input_drift`, settings
``places.drift``), applied to the forecast ``expected_count`` (horizon 1) of every cell:

- **the same weeks a year before**: the mean forecast per cell-week over the drift window's
  origins against the champion's forecast for the same origins ``season_lag_weeks`` earlier,
  made from what was known then (the cell frames of those weeks, rebuilt point-in-time, scored
  by the same model). The season and the model cancel out of the ratio; what moves it is what
  the model was shown, which is what the workload a forecast implies follows;
- **noise**: the quasi-Poisson dispersion and the between-district variance are estimated
  across districts as for the inputs, so a quiet district's ratio carries its own, wider
  interval;
- **an alert** (a breach of kind ``score_drift``, figure ``mean_ratio:expected_count``) needs
  the change to survive Benjamini-Hochberg over the score's tests (overall, regions,
  districts) at ``places.drift.fdr`` AND the ratio outside ``[1 - a, 1 + a]`` with ``a =
  drift.score_mean_ratio_alert`` (20 %: the old rule's mean-ratio gate, kept as the band);
- **history**: the same store-length check as the inputs (`places_drift.drift_history`):
  without the reference weeks' history nothing is compared.

Measured: 0 breaches on the no-drift simulated store (36 groups tested); a x1.5 change of one
district's inputs, rescored by the champion, breached in 13 of 32 districts and never in
another (bench_monitoring_places.py); in the unit scenario 0 of 40 stationary seeds breach and
x1.5 in the busy district is caught in 28 of 40.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from fairness.monitoring.alerts import Breach
from fairness.monitoring.places_config import PlacesDriftSettings
from fairness.monitoring.places_drift import PlacesDrift, places_input_drift

SCORE = "expected_count"
FIGURE = f"mean_ratio:{SCORE}"


def score_band(mean_ratio_alert: float) -> tuple[float, float]:
    """The score drift band ``[1 - a, 1 + a]`` (the forecast's mean moved by ``a`` or more)."""
    return 1.0 - mean_ratio_alert, 1.0 + mean_ratio_alert


def places_score_drift(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    settings: PlacesDriftSettings,
    mean_ratio_alert: float,
    group_columns: Sequence[str] = ("region", "district"),
) -> PlacesDrift | None:
    """The forecast's rate ratio overall and per group (None: a frame lacks the forecast)."""
    if SCORE not in reference.columns or SCORE not in current.columns:
        return None
    low, high = score_band(mean_ratio_alert)
    rule = settings.model_copy(update={"ratio_low": low, "ratio_high": high, "exclude": []})
    return places_input_drift(reference, current, [SCORE], rule, group_columns)


def score_breaches(drift: PlacesDrift | None) -> list[Breach]:
    """The score drift alerts as breaches of kind ``score_drift``."""
    if drift is None:
        return []
    low, high = drift.band
    return [
        Breach(
            kind="score_drift",
            figure=FIGURE,
            group_column=r.group_column,
            group=r.group,
            value=r.ratio,
            threshold=high if (r.ratio or 0) > high else low,
            message=(
                f"mean forecast per cell-week in {r.group_column}={r.group} {r.mean_current:.3g} "
                f"over the last {len(drift.current_origins)} weeks vs {r.mean_reference:.3g} for "
                f"the same weeks a year before, ratio {r.ratio or 0:.2f} [{r.lower or 0:.2f}, "
                f"{r.upper or 0:.2f}] outside [{low:g}, {high:g}] (BH q={r.q_value or 0:.2g})"
            ),
        )
        for r in drift.alerts()
    ]
