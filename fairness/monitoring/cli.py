"""`riskcast monitor [--as-of DATE]`: one monitoring check of each champion (the person model's
here, the places model's in `places_cli`).

The edges of the check (everything between is `check.run_check`, pure):

- the champion and its logged training config from MLflow (`fairness.audit.load_version`);
- the reference: the out-of-time test snapshot the champion was audited on, rebuilt from the
  store as the audit rebuilds it (`fairness.audit.rebuild_test_frame`), with its digest;
- the current population: the champion's population of validity as of ``--as-of`` (default:
  the newest materialisation's date, else today), built from the offline store with the
  protected attributes the online store does not hold;
- the matured cohort: the population one label horizon before, with its labels, when the
  store has observed them; the estimate compared with it is the one stored by the check of
  that date (if there was one);
- the service's decisions, handed in by the command root (`decisions`: the fairness stage may
  not import the service);
- the monitoring store (`store.open_monitoring_store`) and the ledger: a check with breaches
  is one ``monitoring_alert`` entry, a due re-audit another.

`monitor_after_materialize` is the hook the command root attaches to
`riskcast features materialize` (and, places only, to `riskcast places materialize`): the
check of each model with a champion (persons, places) runs for the materialised date, and a
failure is reported without failing the materialisation.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import polars as pl
import typer
from rich.console import Console

from riskcast.errors import RiskcastError
from riskcast.settings import HOME_HELP, use_home

DecisionsSource = Callable[[], pl.DataFrame | None]
"""The service's decisions (``person_id, officer, unit, action, override, recorded_at``)."""
ForecastSource = Callable[[], tuple[str, date, pl.DataFrame] | None]
"""The places forecast the service answers from: (model version, as-of, the horizon-1 rows with
``expected_count, region, district``), or None when nothing is materialised."""

AsOfOption = Annotated[
    datetime | None,
    typer.Option(
        "--as-of",
        formats=["%Y-%m-%d"],
        metavar="DATE",
        help="the date checked (default: the as-of of the newest materialization, else today)",
    ),
]
HomeOption = Annotated[Path | None, typer.Option("--home", help=HOME_HELP, callback=use_home)]
ByOption = Annotated[str, typer.Option("--by", help="who runs the check (recorded on alerts)")]
MONITOR_ACTOR = "riskcast-monitor"


def register(
    app: typer.Typer,
    *,
    decisions: DecisionsSource | None = None,
    forecast: ForecastSource | None = None,
) -> None:
    """Add `riskcast monitor` to the root CLI."""

    @app.command("monitor")
    def monitor(
        as_of: AsOfOption = None, by: ByOption = MONITOR_ACTOR, home: HomeOption = None
    ) -> None:
        """Check the champion after promotion: input and score drift, the label-free
        performance estimate with intervals, realised performance on the matured cohort,
        decisions and outcomes, the feedback-loop indicator; kept in the monitoring store,
        breaches recorded in the ledger (kind monitoring_alert)."""
        from fairness.commands import progress_line
        from riskcast.errors import NotFoundError

        day = as_of.date() if as_of else None
        with progress_line("monitor") as say:
            stored, missing = None, None
            try:
                stored = run_monitor(day, decisions=decisions, by=by, progress=say)
            except NotFoundError as exc:  # no person champion: the places one may still be
                if forecast is None:
                    raise
                missing = exc
            places, problem = None, None
            if forecast is not None:
                try:
                    places = run_places_monitor(forecast, as_of=day, by=by, progress=say)
                except RiskcastError as exc:  # the person check is kept whatever places do
                    problem = str(exc)
            if stored is None and places is None and missing is not None:
                raise missing
        console = Console(soft_wrap=True)
        if stored is not None:
            print_check(console, stored)
        else:
            console.print(f"persons: not checked: {missing}", highlight=False)
        if places is not None:
            print_check(console, places)
        if problem is not None:
            console.print(f"places: not checked: {problem}", highlight=False)


def print_check(console: Console, stored: Any) -> None:
    """A short account of a stored check (`store.StoredCheck`)."""
    r = stored.result
    overall = next((e for e in r.estimate if e.group_column == "all"), None)
    console.print(
        f"check {stored.id}: {r.model} v{r.version} as of {r.as_of}: {r.n_current:,} "
        f"{'persons' if r.tiers else 'rows'} against the reference of {r.n_reference:,} "
        f"({r.reference})",
        highlight=False,
    )
    if overall is not None and overall.auc.value is not None:
        console.print(
            f"estimated AUC {overall.auc.value:.3f} [{overall.auc.lower:.3f}, "
            f"{overall.auc.upper:.3f}] (label-free)",
            highlight=False,
        )
    if r.matured is not None:
        real = next((g for g in r.matured.realised if g.group_column == "all"), None)
        auc = f"{real.auc:.3f}" if real and real.auc is not None else "–"
        console.print(
            f"matured cohort as of {r.matured.as_of}: {r.matured.n:,} persons, realised AUC "
            f"{auc}; estimate compared: {r.matured.estimate_as_of or 'none stored'}",
            highlight=False,
        )
        if r.matured.outcomes:
            console.print(f"outcomes by decision: {r.matured.outcomes_note}", highlight=False)
    elif r.matured_note:
        console.print(f"matured cohort: {r.matured_note}", highlight=False)
    if r.places is not None:
        print_places(console, r.places)
    alerts = [*r.breaches, *(r.places.alerts if r.places is not None else [])]
    console.print(f"breaches: {len(alerts)}", highlight=False)
    for b in alerts[:20]:
        console.print(f"  {b.kind}: {b.message}", highlight=False)
    if len(alerts) > 20:
        console.print(f"  ... and {len(alerts) - 20} more (in the store)", highlight=False)
    if r.advisories:  # the policy's advisory metrics (FNR): shown, not breaches
        console.print(f"advisories (not breaches): {len(r.advisories)}", highlight=False)
        for a in r.advisories[:10]:
            console.print(f"  {a.message}", highlight=False)
    if r.reaudit:
        console.print("RE-AUDIT REQUIRED (recorded in the ledger):", highlight=False)
        for reason in r.reaudit[:5]:
            console.print(f"  {reason}", highlight=False)


def print_places(console: Console, places: Any) -> None:
    """The places part of a check (`places.PlacesMonitoring`), a line each: realised
    performance, input drift, score drift, and why drift was not judged (the history state
    when the store is too short). The breaches themselves follow in `print_check`."""
    for line in places_lines(places):
        console.print(line, highlight=False)


def places_lines(places: Any) -> list[str]:
    """The lines `print_places` prints: what an operator needs to tell "no drift alert" from
    "drift not judged" or "too little evidence to see a change at the band's edge"."""
    lines = [_realised_line(places)]
    history = places.drift_history
    if history is not None and not history.enough:
        lines.append(f"drift: {history.message}")
    elif places.input_drift is None and places.drift_note:
        lines.append(f"drift: not judged: {places.drift_note}")
    drift = places.input_drift
    if drift is not None:
        low, high = drift.band
        line = (
            f"input drift ({len(drift.current_origins)} weeks vs the same weeks a year "
            f"before): {_n(len(drift.alerts()), 'alert')} of {drift.tests} tests (BH at "
            f"{drift.fdr:g}, band [{low:g}, {high:g}])"
        )
        states: dict[str, int] = {}
        for e in drift.evidence:
            states[e.state] = states.get(e.state, 0) + 1
        if states:
            line += "; groups: " + ", ".join(f"{n} {state}" for state, n in states.items())
        lines.append(line)
    scores = places.score_drift
    if scores is not None:
        low, high = scores.band
        lines.append(
            f"score drift (mean forecast, {len(scores.current_origins)} weeks vs the same "
            f"weeks a year before): {_n(len(scores.alerts()), 'breach')} of {scores.tests} groups "
            f"tested (band [{low:g}, {high:g}])"
        )
    return lines


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}{'es' if noun[-1] == 'h' else 's'}"


def _realised_line(places: Any) -> str:
    """The places realised performance in one line."""
    real = places.realised
    if real is None:
        return f"realised: {places.realised_note}"
    overall = next(c for c in real.ratios if c.group_column == "all")
    ratio = (
        f"{overall.ratio:.2f} [{overall.lower:.2f}, {overall.upper:.2f}]"
        if (overall.ratio is not None and overall.lower is not None and overall.upper is not None)
        else "-"
    )
    pai = real.pai
    audited = f"{pai.audited:.2f}" if pai.audited is not None else "-"
    return (
        f"realised weeks {real.first_week}..{real.last_week} ({real.weeks} weeks, "
        f"{real.cells:,} cells): observed/forecast {ratio}, deviance {real.deviance:.4f}, "
        f"PAI@{pai.area_share:.0%} {pai.value if pai.value is None else round(pai.value, 2)} "
        f"(audited {audited})"
    )


def run_monitor(
    as_of: date | None,
    *,
    decisions: DecisionsSource | None = None,
    by: str = MONITOR_ACTOR,
    progress: Callable[[str], None] | None = None,
) -> Any:
    """One check of the person champion as of ``as_of``; returns the `store.StoredCheck`."""
    from fairness.audit import load_version, rebuild_test_frame
    from fairness.commands import edges
    from fairness.monitoring.check import CheckInputs, run_check
    from fairness.monitoring.config import load_monitoring_config
    from fairness.monitoring.store import open_monitoring_store
    from fairness.policy import load_policy
    from fairness.promotion import current_champion
    from riskcast.errors import NotFoundError
    from riskcast.names import PERSON_MODEL

    say = progress or (lambda message: None)
    home, uri = edges()
    version = current_champion(PERSON_MODEL, uri)
    if version is None:
        raise NotFoundError(f"{PERSON_MODEL} has no champion: nothing to monitor (promote first)")
    policy, config = load_policy(), load_monitoring_config()
    say(f"v{version}: loading the champion")
    ctx = load_version(PERSON_MODEL, version, home=home, uri=uri)
    day = as_of or _default_as_of()
    say(f"v{version}: rebuilding the audited test snapshot (the reference)")
    reference, digest = rebuild_test_frame(ctx, home)
    dates = sorted({str(d) for d in reference["as_of"].unique().to_list()})
    note = (
        f"the out-of-time test snapshot the champion was audited on (as of "
        f"{', '.join(dates)}, digest {digest[:12]})"
    )
    say(f"v{version}: building the population as of {day}")
    current = _population_at(ctx, home, day)
    store = open_monitoring_store()
    horizon = int(ctx.config["label"]["horizon_days"])
    matured, matured_at, matured_note, stored_estimate = None, None, None, None
    cohort_day = day - timedelta(days=horizon)
    earlier = store.checks(PERSON_MODEL, since=cohort_day - timedelta(days=92), version=version)
    kept = [c for c in earlier if c.result.as_of <= cohort_day]
    if kept:
        cohort_day, stored_estimate = kept[-1].result.as_of, kept[-1].result.estimate
    say(f"v{version}: the cohort of {cohort_day} and its labels")
    try:
        matured = _labelled_at(ctx, home, cohort_day)
        matured_at = cohort_day
    except Exception as exc:  # labels not yet observed, or nobody in scope then
        matured_note = f"no matured cohort as of {cohort_day}: {exc}"
    frames = [
        _scored(ctx, f, policy) if f is not None else None for f in (reference, current, matured)
    ]
    all_decisions = decisions() if decisions is not None else None
    cohort_decisions = None
    if all_decisions is not None and all_decisions.height:
        all_decisions = all_decisions.filter(pl.col("recorded_at").dt.date() <= day)
        if matured_at is not None and frames[2] is not None:
            window = timedelta(days=config.outcomes.decision_window_days)
            cohort_decisions = all_decisions.filter(
                pl.col("recorded_at").dt.date().is_between(matured_at, matured_at + window)
            )
            acted = cohort_decisions.filter(pl.col("action").is_in(config.outcomes.acted))
            frames[2] = frames[2].with_columns(
                pl.col("person_id")
                .cast(pl.String)
                .is_in(acted["person_id"].to_list())
                .alias("listed")
            )
    previous = store.before(PERSON_MODEL, day, version=version)
    say(f"v{version}: drift, estimate, realised performance, decisions")
    result = run_check(
        CheckInputs(
            model=PERSON_MODEL,
            version=version,
            as_of=day,
            checked_at=datetime.now(UTC),
            reference_note=note,
            reference=frames[0],  # type: ignore[arg-type]
            current=frames[1],  # type: ignore[arg-type]
            inputs=list(ctx.model.feature_names),
            categorical=[],
            tiers=ctx.model.tiers,
            matured=frames[2],
            matured_as_of=matured_at,
            matured_note=matured_note,
            stored_estimate=stored_estimate,
            stored_estimate_as_of=cohort_day if stored_estimate else None,
            decisions=all_decisions,
            cohort_decisions=cohort_decisions,
            previous_breaches=previous.result.breaches if previous else None,
        ),
        config,
        policy,
    )
    say(f"v{version}: keeping the check")
    stored = store.record(result)
    store.dispose()
    record_alerts(stored, by=by)
    return stored


def run_places_monitor(
    forecast: ForecastSource | None,
    *,
    as_of: date | None = None,
    by: str = MONITOR_ACTOR,
    progress: Callable[[str], None] | None = None,
) -> Any:
    """The places champion's check (`places_cli.run_places_monitor`): score and input drift
    over the drift window against the same weeks a year before, realised performance of the
    weeks passed since the audited test weeks; None when there is no places champion, or no
    date (``--as-of`` or a materialised forecast of it)."""
    from fairness.monitoring.places_cli import run_places_monitor as run_places

    return run_places(forecast, as_of=as_of, by=by, progress=progress, record=record_alerts)


def record_alerts(stored: Any, *, by: str = MONITOR_ACTOR) -> None:
    """One ``monitoring_alert`` ledger entry for a check with breaches (its kinds and the first
    messages; the store holds them all), and one more when a re-audit is due."""
    from fairness.ledger import ledger_version, open_ledger

    r = stored.result
    version = ledger_version(r.model, r.version)
    alerts = [*r.breaches, *(r.places.alerts if r.places is not None else [])]
    if not alerts and not r.reaudit:
        return
    ledger = open_ledger()
    try:
        if alerts:
            kinds: dict[str, int] = {}
            for b in alerts:
                kinds[b.kind] = kinds.get(b.kind, 0) + 1
            ledger.append(
                "monitoring_alert",
                actor=by,
                role="monitor",
                version=version,
                decision=f"{len(alerts)} breaches as of {r.as_of}",
                reasons=[
                    f"monitoring check {stored.id}: "
                    + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())),
                    *[b.message for b in alerts[:10]],
                ],
            )
        if r.reaudit:
            ledger.append(
                "monitoring_alert",
                actor=by,
                role="monitor",
                version=version,
                decision="re-audit required",
                reasons=[f"monitoring check {stored.id} as of {r.as_of}", *r.reaudit[:10]],
            )
    finally:
        ledger.dispose()


def monitor_after_materialize(
    decisions: DecisionsSource | None = None,
    forecast: ForecastSource | None = None,
    *,
    persons: bool = True,
) -> Callable[[date], None]:
    """The materialisation hook: a check as of the materialised date of each model with a
    champion (persons when ``persons``; places whenever a places champion exists), silently
    nothing without one; a failure is printed, never raised, and one model's failure does not
    stop the other's check."""

    def hook(day: date) -> None:
        from fairness.promotion import current_champion
        from riskcast.names import PERSON_MODEL, PLACES_MODEL
        from riskcast.settings import get_settings
        from training.tracking import tracking_uri

        console = Console(stderr=True)
        home = get_settings().home
        uri = tracking_uri(home)
        if uri.startswith("sqlite:") and not (home / "mlflow.db").is_file():
            return  # no registry, no champion
        checks: list[tuple[str, Callable[[], Any]]] = []
        if persons:
            checks.append((PERSON_MODEL, lambda: run_monitor(day, decisions=decisions)))
        checks.append((PLACES_MODEL, lambda: run_places_monitor(forecast, as_of=day)))
        for model, run in checks:
            try:
                if current_champion(model, uri) is None:
                    continue
                stored = run()
            except Exception as exc:  # the materialisation stands whatever the check does
                console.print(
                    f"monitor: the {model} check as of {day} failed: {exc}", highlight=False
                )
                continue
            if stored is None:
                continue
            console.print(
                f"monitor: {model} check {stored.id} kept ({stored.result.alert_count} breaches"
                f"{', re-audit required' if stored.result.reaudit else ''})",
                highlight=False,
            )

    return hook


# --------------------------------------------------------------------------- edges
def _default_as_of() -> date:
    from features.online import open_online_store
    from riskcast.settings import get_settings

    online = open_online_store(get_settings())
    try:
        current = online.current()
    finally:
        online.dispose()
    return current.as_of if current is not None else datetime.now(UTC).date()


def _spec_and_config(ctx: Any) -> tuple[Any, Any]:
    from features.frames.definitions import load_spec
    from training.config import TrainingConfig

    return load_spec(), TrainingConfig.model_validate(ctx.config["training"])


def _population_at(ctx: Any, home: Path, day: date) -> pl.DataFrame:
    """The champion's population of validity as of ``day``: its inputs and the protected
    attributes, no label (not known yet)."""
    from features.frames.builder import collect_features
    from features.frames.scope import SCOPE_AGE, ages
    from features.store.offline import OfflineStore
    from training.dataset import KEYS, Dataset, add_extra_inputs

    spec, cfg = _spec_and_config(ctx)
    store = OfflineStore(home)
    frame = collect_features(store, spec, [day], cfg.population)
    if cfg.min_age is not None:
        old = ages(store, spec, [day]).filter(pl.col(SCOPE_AGE) >= cfg.min_age)
        frame = frame.join(old.select(*KEYS), on=list(KEYS), how="semi", maintain_order="left")
    ds = Dataset(
        frame=frame,
        features=spec.model_inputs(),
        protected=spec.protected_features(),
        label_name=cfg.label,
        horizon_days=int(ctx.config["label"]["horizon_days"]),
        spec_hash=spec.spec_hash(),
    )
    return add_extra_inputs(ds, cfg.extra_inputs).frame


def _labelled_at(ctx: Any, home: Path, day: date) -> pl.DataFrame:
    """The population as of ``day`` with its labels (raises when not yet observed)."""
    from features.store.offline import OfflineStore
    from training.dataset import add_extra_inputs, build_dataset
    from training.labels import LabelDefinition

    spec, cfg = _spec_and_config(ctx)
    label = LabelDefinition.model_validate(ctx.config["label"])
    ds = build_dataset(
        OfflineStore(home), spec, [day], cfg.population, label, cfg.label, cfg.min_age
    )
    return add_extra_inputs(ds, cfg.extra_inputs).frame


def _scored(ctx: Any, frame: pl.DataFrame, policy: Any) -> pl.DataFrame:
    """``frame`` with the champion's ``probability`` and the audited group labels (age banded,
    as the fairness audit groups persons)."""
    from fairness.policy import group_columns

    p = np.asarray(ctx.model.predict_proba(frame), dtype=np.float64)
    groups = group_columns(frame, policy)
    keep = [c for c in groups.columns if c not in frame.columns]
    return frame.with_columns(pl.Series("probability", p), *[groups[c] for c in keep])
