"""The edges of the places check of `riskcast monitor` (everything between is
`places_check.run_places_check`, pure).

- the champion (`street-crime`, alias ``champion``) and its model from MLflow;
- the test predictions it was audited on (``places/test_predictions``): the audited PAI (the
  same weeks, the same metric function). The score's drift is not judged against them (another
  season): the champion's forecast of the drift window against its forecast of the same
  origins a year before (`places_scores`), both scored from the frames below;
- the input drift's frames: the cell frames of the drift window (the check date and the
  ``places.drift.window_weeks - 1`` weeks before it, a week apart) and of the same origins
  ``season_lag_weeks`` earlier (the same weeks of the year), rebuilt point-in-time from the
  offline store as training built its frames. The store must hold the reference weeks'
  history (a year plus the longest feature window before the check): `store_start` reads the
  store's first incident and `places_drift.drift_history` compares; a store that starts later
  would give the long windows a truncated reference (ratios far above 1 that are not drift),
  so the reference weeks are then not built and the check says "insufficient history";
- the current forecast: the cell frame as of the check date, scored by the champion (the same
  rows the service's materialised forecast holds, recomputed so ``--as-of`` works without a
  materialisation);
- the realised cell-weeks: for every weekly origin (Sunday) after the audited test origins
  whose first forecast week has ended by the check date (the newest ``realised_weeks``), the
  champion's horizon-1 forecast made from what was known at that origin and the incidents the
  register counted in that week. One `build_cell_frame` call builds all of them. The counts are
  those the store's latest delivery knows (the builder's label), so a re-run of an old check
  date on a store with later deliveries can count late registrations the original check did not
  see: the monitoring store keeps what each check saw.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl

Progress = Callable[[str], None]


def realised_origins(
    day: date, after: date | None, weeks: int, sunday: Callable[[date], date]
) -> list[date]:
    """The weekly origins whose first forecast week (the Monday after the origin, seven days)
    has ended by ``day`` (the builder's rule: week start + 7 days <= the last day known), after
    ``after`` (the last audited test origin), the newest ``weeks`` of them, oldest first."""
    newest = sunday(day - timedelta(days=8))
    out = [newest - timedelta(weeks=k) for k in range(weeks)]
    return sorted(t for t in out if after is None or t > after)


def drift_origins(day: date, window: int, lag: int) -> tuple[list[date], list[date]]:
    """The drift window's origins (``day`` and the ``window - 1`` weeks before it) and the same
    origins ``lag`` weeks earlier, both oldest first."""
    current = sorted(day - timedelta(weeks=k) for k in range(window))
    return current, [t - timedelta(weeks=lag) for t in current]


def store_start(incidents: pl.DataFrame) -> date | None:
    """The day of the store's first registered incident (None: no incident)."""
    if incidents.is_empty() or "registered_at" not in incidents.columns:
        return None
    first = incidents["registered_at"].min()
    return first.date() if isinstance(first, datetime) else None


def run_places_monitor(
    forecast: Callable[[], tuple[str, date, pl.DataFrame] | None] | None,
    *,
    as_of: date | None = None,
    by: str,
    progress: Progress | None = None,
    record: Callable[..., None] | None = None,
) -> Any:
    """One check of the places champion as of ``as_of`` (default: the as-of of the forecast the
    service answers from, when it is the champion's); None without a champion or a date."""
    from fairness.commands import edges
    from fairness.monitoring.config import load_monitoring_config
    from fairness.monitoring.places_check import run_places_check
    from fairness.monitoring.store import open_monitoring_store
    from fairness.places.audit import load_predictions
    from fairness.policy import load_policy
    from fairness.promotion import current_champion
    from riskcast.names import PLACES_MODEL

    say = progress or (lambda message: None)
    home, uri = edges()
    version = current_champion(PLACES_MODEL, uri)
    if version is None:
        return None
    served = forecast() if forecast is not None else None
    day = as_of or (served[1] if served is not None and served[0] == version else None)
    if day is None:
        return None  # nothing materialised from the champion and no date asked
    config = load_monitoring_config()
    settings = config.places
    policy = load_policy().places
    say(f"places v{version}: the audited test predictions and the champion")
    reference_scores, _, sha = load_predictions(PLACES_MODEL, version, uri)
    model = _champion(version, home)
    x = places_check_inputs(model, version, day, reference_scores, sha, home, settings, say)
    store = open_monitoring_store()
    try:
        previous = store.before(PLACES_MODEL, day, version=version)
        say(f"places v{version}: drift and realised performance")
        x = replace(x, previous_breaches=previous.result.breaches if previous else None)
        result = run_places_check(x, config, policy)
        stored = store.record(result)
    finally:
        store.dispose()
    if record is not None:
        record(stored, by=by)
    return stored


def places_check_inputs(
    model: Any,
    version: str,
    day: date,
    reference_scores: pl.DataFrame,
    sha: str,
    home: Any,
    settings: Any,
    say: Progress,
) -> Any:
    """What the places check reads (`places_check.PlacesCheckInputs`), built from the store in
    one `build_frame` call: the realised weeks, the drift window and its reference a year
    before, the check date. Separate from the store and the ledger so a benchmark can rerun
    the pure check on the same frames (e.g. with a change injected)."""
    from fairness.monitoring.places import mean_pai
    from fairness.monitoring.places_check import PlacesCheckInputs
    from fairness.monitoring.places_drift import drift_history
    from features.cells.geo import cell_geometry
    from riskcast.names import PLACES_MODEL
    from training.places.frames import build_frame, load_cell_inputs
    from training.places.model import HORIZON
    from training.places.plan import sunday_on_or_before

    origins = model.metadata["origins"]
    test = sorted(date.fromisoformat(str(d)) for d in origins["test"])
    realised_at = realised_origins(
        day, test[-1] if test else None, settings.realised_weeks, sunday_on_or_before
    )
    window, seasonal = drift_origins(
        day, settings.drift.window_weeks, settings.drift.season_lag_weeks
    )
    inputs = load_cell_inputs(home)
    history = drift_history(
        seasonal,
        inputs.spec.max_lookback_weeks(),
        store_start(inputs.sources.incidents),
        settings.drift.season_lag_weeks,
    )
    if not history.enough:
        seasonal = []  # nothing to compare against: the check says so, it never alerts
    drift_note = None if history.enough else history.message
    resolution = int(model.metadata.get("h3_resolution", inputs.places.h3_resolution))
    if resolution != inputs.places.h3_resolution:
        places = inputs.places.model_copy(update={"h3_resolution": resolution})
        inputs = type(inputs)(inputs.sources, places, inputs.spec, inputs.store)
    say(f"places v{version}: cell frames of {len(realised_at)} realised weeks, the drift "
        f"window {window[0]}..{window[-1]} and {len(seasonal)} weeks a year before")  # fmt: skip
    wanted = sorted({*realised_at, *window, *seasonal})
    frame = build_frame(inputs, wanted, [1], with_label=True)
    frame = frame.with_columns(pl.Series("expected_count", model.predict(frame)))
    features = [f for f in model.features if f != HORIZON]
    realised, note = None, None
    done = frame.filter(pl.col("as_of").is_in(realised_at) & pl.col("label").is_not_null())
    if done.height:
        geometry = cell_geometry(done["cell_id"].unique().to_list()).select("cell_id", "area_km2")
        realised = done.join(geometry, on="cell_id", how="left").rename({"label": "observed"})
    else:
        note = (
            f"no forecast week after the audited test weeks (last origin "
            f"{test[-1] if test else '?'}) has ended by {day}"
        )
    return PlacesCheckInputs(
        model=PLACES_MODEL,
        version=version,
        as_of=day,
        reference_note=(
            f"score and inputs: the {len(window)} weekly origins to {day} vs the same origins "
            f"{settings.drift.season_lag_weeks} weeks before (the champion's forecast of both); "
            f"PAI: the test weeks the champion was audited on (origins "
            f"{test[0] if test else '?'}..{test[-1] if test else '?'}; predictions sha256 "
            f"{sha[:12]})"
        ),
        reference_scores=reference_scores,
        current_scores=frame.filter(pl.col("as_of") == day),
        reference_features=frame.filter(pl.col("as_of").is_in(seasonal)) if seasonal else None,
        current_features=frame.filter(pl.col("as_of").is_in(window)),
        inputs=features,
        realised=realised,
        realised_note=note,
        audited_pai=mean_pai(reference_scores, settings.area_share),
        drift_note=drift_note,
        history=history,
    )


def _champion(version: str, home: Any) -> Any:
    from riskcast.names import PLACES_MODEL
    from training.places.registry import load_places_model

    return load_places_model(PLACES_MODEL, version, home=home).model
