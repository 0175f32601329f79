"""`riskcast places audit`: audit a `street-crime` version from its test predictions.

`build_audit` is pure (predictions, the champion's predictions, residents, weekly registrations
and appeals in; the typed `PlacesAudit` out). The edges: `load_predictions` reads a version's
``places/test_predictions.parquet`` from its MLflow run (the training stage's contract,
docs/PLACES.md); `store_inputs` reads the offline store as known at the **report date** (the
end of the last audited week: what was known when the audited period closed): persons per
district, registered incidents per district and week (``registered_at``, the clock the label
uses), and appeals of the configured categories per district and week (``submitted_at``);
`run_places_audit` puts them together, keeps the report (`fairness.places.report`) and attaches
it to the version's run.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from fairness.places.exposure import district_weeks, exposure_by_district, residents_by_district
from fairness.places.feedback import feedback_loop, flag_onsets, weekly_counts
from fairness.places.gate import decide_places
from fairness.places.metrics import check_predictions, score_columns, weekly_measures
from fairness.places.report import keep_places_report, places_content
from fairness.places.results import PlacesAudit, ScoreMeasures
from fairness.policy import FairnessPolicy, PlacesPolicy
from fairness.report import WrittenReport
from fairness.results import PASS, GateCheck, GateDecision
from riskcast.errors import ConfigError, NotFoundError
from riskcast.names import CHALLENGER, PLACES_MODEL

ARTIFACT = "places/test_predictions.parquet"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class StoreInputs:
    """What the audit reads from the offline store (None: the table was never delivered)."""

    residents: pl.DataFrame | None
    registrations: pl.DataFrame | None
    appeals: pl.DataFrame | None
    report_date: date


@dataclass(frozen=True)
class PlacesAuditRun:
    """An audited version: the typed audit, the report's content and files, the digests."""

    version: str
    audit: PlacesAudit
    content: dict[str, Any]
    written: WrittenReport
    data_digests: dict[str, str]


def places_policy(policy: FairnessPolicy) -> PlacesPolicy:
    if policy.places is None:
        raise ConfigError("the fairness policy has no 'places' section (configs/fairness.yaml)")
    return policy.places


# --------------------------------------------------------------------------- pure
def build_audit(
    frame: pl.DataFrame,
    policy: PlacesPolicy,
    *,
    model_name: str,
    version: str,
    decision: GateDecision | None,
    comparison: list[Any] | None = None,
    residents: pl.DataFrame | None = None,
    registrations: pl.DataFrame | None = None,
    appeals: pl.DataFrame | None = None,
    sources: dict[str, str] | None = None,
) -> PlacesAudit:
    """The audit of checked predictions ``frame`` (`check_predictions`): measures per score,
    exposure and the feedback-loop check. Without ``registrations`` the predictions'
    ``observed`` counts stand in (test weeks only: districts flagged from the first week then
    have no weeks before and get "insufficient evidence"); without ``appeals`` no district can
    be judged."""
    k = policy.area_share
    measures = []
    for score in score_columns(frame):
        weekly = weekly_measures(frame, k, score)
        measures.append(
            ScoreMeasures(
                score=score, weeks=weekly.height,
                pai=_mean(weekly["pai"]), deviance=_mean(weekly["deviance"]),
            )
        )  # fmt: skip
    weeks = frame["week_start"].unique().sort()
    first, last = (weeks.min(), weeks.max()) if weeks.len() else (None, None)
    feedback = []
    if isinstance(first, date) and isinstance(last, date):
        if registrations is None:
            registrations = (
                frame.group_by("region", "district", "week_start")
                .agg(pl.col("observed").sum().cast(pl.Int64).alias("count"))
                .sort("region", "district", "week_start")
            )
        empty = pl.DataFrame(
            schema={"region": pl.String, "district": pl.String, "week_start": pl.Date,
                    "count": pl.Int64}
        )  # fmt: skip
        feedback = feedback_loop(
            flag_onsets(district_weeks(frame, k)), registrations,
            empty if appeals is None else appeals,
            first_week=first, last_week=last, rule=policy.feedback,
        )  # fmt: skip
    return PlacesAudit(
        model_name=model_name,
        version=version,
        area_share=k,
        weeks=weeks.len(),
        first_week=first if isinstance(first, date) else None,
        last_week=last if isinstance(last, date) else None,
        cells=frame["cell_id"].n_unique(),
        measures=measures,
        comparison=comparison or [],
        exposure=exposure_by_district(frame, policy, residents),
        feedback=feedback,
        feedback_sources=dict(sources or {}),
        decision=decision,
    )


def _mean(series: pl.Series) -> float | None:
    value = series.drop_nulls().mean()
    return float(value) if isinstance(value, int | float) else None


def advisory_reasons(audit: PlacesAudit) -> list[str]:
    """Flagged districts as ledger reasons (reported, never blocking)."""
    out = [
        f"NOTE: exposure {r.region}/{r.district}: flagged area {r.flagged_area_share:.3f} vs "
        f"incidents {r.incident_share:.3f} ({r.status})"
        for r in audit.flagged_exposure()
    ]
    out += [
        f"NOTE: feedback loop {r.region}/{r.district}: {r.detail}" for r in audit.flagged_feedback()
    ]
    return out


# --------------------------------------------------------------------------- edges
def resolve_version(model_name: str, version: str | None, uri: str) -> str:
    """``version`` as given, else the version holding the ``challenger`` alias."""
    if version is not None:
        return version
    from training.tracking import tracking_session

    with tracking_session(uri) as client:
        try:
            return str(client.get_model_version_by_alias(model_name, CHALLENGER).version)
        except Exception as exc:  # MLflow raises when the alias or the model is missing
            raise NotFoundError(
                f"model {model_name} has no '{CHALLENGER}' version: train one "
                "(`riskcast places train`) or pass --version"
            ) from exc


def load_predictions(model_name: str, version: str, uri: str) -> tuple[pl.DataFrame, str, str]:
    """A version's test predictions (checked), its run id and the artifact's sha256."""
    import mlflow

    from training.tracking import tracking_session

    with tracking_session(uri) as client:
        try:
            run_id = str(client.get_model_version(model_name, version).run_id)
        except Exception as exc:  # MLflow raises its own exception type
            raise NotFoundError(f"model {model_name} has no version {version}") from exc
        target = tempfile.mkdtemp(prefix="riskcast-places-audit-")
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=ARTIFACT, dst_path=target
            )
        except Exception as exc:  # MLflow raises its own exception type
            raise NotFoundError(
                f"{model_name} v{version} (run {run_id}) has no artifact {ARTIFACT}: was it "
                "trained by `riskcast places train`?"
            ) from exc
    raw = Path(path).read_bytes()
    frame = check_predictions(pl.read_parquet(path))
    horizon = frame.filter(pl.col("horizon") == 1) if "horizon" in frame.columns else frame
    return horizon, run_id, hashlib.sha256(raw).hexdigest()


def store_inputs(
    home: Path, first_week: date, last_week: date, policy: PlacesPolicy
) -> StoreInputs:
    """Persons per district, registrations and appeals per district and week, as known at the
    end of the last audited week, from ``lookback_weeks`` before the first audited week."""
    from features.store.offline import OfflineStore

    store = OfflineStore(home)
    report_date = last_week + timedelta(days=6)
    since = first_week - timedelta(weeks=policy.feedback.lookback_weeks)
    residents = registrations = appeals = None
    if store.has_table("persons"):
        persons = store.scan_as_of("persons", report_date).select("region", "district").collect()
        residents = residents_by_district(persons)
    if store.has_table("incidents"):
        incidents = (
            store.scan_as_of("incidents", report_date)
            .filter(pl.col("registered_at").dt.date() >= since)
            .select("registered_at", "region", "district")
            .collect()
        )
        registrations = weekly_counts(incidents, "registered_at")
    if store.has_table("appeals"):
        rows = (
            store.scan_as_of("appeals", report_date)
            .filter(pl.col("submitted_at").dt.date() >= since)
            .select("submitted_at", "region", "district", "category")
            .collect()
        )
        appeals = weekly_counts(
            rows, "submitted_at", categories=list(policy.feedback.appeal_categories)
        )
    return StoreInputs(residents, registrations, appeals, report_date)


def _sources(inputs: StoreInputs, policy: PlacesPolicy) -> dict[str, str]:
    known = f"as known at {inputs.report_date.isoformat()}"
    return {
        "registrations": (
            f"the store's incidents by registered_at, {known}"
            if inputs.registrations is not None
            else "the test predictions' observed counts (the store holds no incidents)"
        ),
        "appeals": (
            f"the store's appeals ({', '.join(policy.feedback.appeal_categories)}) by "
            f"submitted_at, {known}"
            if inputs.appeals is not None
            else "none (the store holds no appeals): no district can be judged"
        ),
        "residents": (
            f"the store's persons by district, {known}"
            if inputs.residents is not None
            else "none (the store holds no persons)"
        ),
    }


def run_places_audit(
    version: str,
    policy: FairnessPolicy,
    *,
    home: Path,
    uri: str,
    model_name: str = PLACES_MODEL,
    champion: str | None,
    progress: Progress | None = None,
) -> PlacesAuditRun:
    """Audit ``version`` against ``champion`` (its version, None: no champion), keep the
    report and attach it to the version's run."""
    from fairness.report import log_report_to_mlflow

    rules = places_policy(policy)
    say = progress or (lambda message: None)
    say(f"v{version}: reading its test predictions from MLflow")
    frame, run_id, digest = load_predictions(model_name, version, uri)
    digests = {"test predictions": digest}
    notes: list[str] = []
    champion_frame, missing = None, None
    if champion == version:
        decision = GateDecision(
            outcome=PASS,
            checks=[GateCheck(name="versus champion", outcome=PASS, detail="this is the champion")],
            champion=champion,
        )
        comparisons: list[Any] = []
    else:
        if champion is not None:
            say(f"v{version}: reading champion v{champion}'s test predictions")
            try:
                champion_frame, _, champ_digest = load_predictions(model_name, champion, uri)
                digests[f"champion v{champion} test predictions"] = champ_digest
            except NotFoundError as exc:
                missing = str(exc)
                notes.append(f"champion v{champion}: {missing}")
        say(f"v{version}: the gate (paired bootstrap over weeks, {rules.bootstrap.n_boot} reps)")
        comparisons, decision = decide_places(
            frame, champion_frame, rules, champion_version=champion, champion_missing=missing
        )
    weeks = frame["week_start"]
    first, last = weeks.min(), weeks.max()
    if not isinstance(first, date) or not isinstance(last, date):
        raise NotFoundError(f"{model_name} v{version}'s test predictions hold no week")
    say(f"v{version}: persons, incidents and appeals from the store")
    inputs = store_inputs(home, first, last, rules)
    say(f"v{version}: exposure by district and the feedback-loop check")
    audit = build_audit(
        frame, rules, model_name=model_name, version=version, decision=decision,
        comparison=comparisons, residents=inputs.residents, registrations=inputs.registrations,
        appeals=inputs.appeals, sources=_sources(inputs, rules),
    )  # fmt: skip
    content = places_content(
        audit, policy_version=policy.policy_version, rationale=rules.rationale,
        data_digests=digests, notes=notes, run_id=run_id,
    )  # fmt: skip
    say(f"v{version}: writing the report")
    written = keep_places_report(content, home, model_name, version)
    say(f"v{version}: attaching the report to the MLflow run")
    log_report_to_mlflow(run_id, written, uri)
    return PlacesAuditRun(version, audit, content, written, digests)
