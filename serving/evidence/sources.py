"""The edges of the evidence pack: read what the registry, the audits, the ledger, the
configuration and the service's tables already hold, into one typed `Sources` value.

Nothing is recomputed here (no audit, no training): a pack states what is on record, and says
what is not (`Sources.gaps`). The model version comes from MLflow through the fairness stage's
own reader (`fairness.audit.load_version`: run, tags, training config, the `RiskModel`), so
the pack describes exactly what the audit audited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from fairness.ledger import Ledger, LedgerEntry, ledger_version
from fairness.monitoring.config import MONITORING_FILE, MonitoringConfig, load_monitoring_config
from fairness.policy import POLICY_FILE, FairnessPolicy, load_policy
from fairness.report_store import STEM, audit_id_of, latest_report, version_dir
from riskcast.configio import find_config
from riskcast.digest import sha256_file
from riskcast.errors import InputError, NotFoundError
from riskcast.settings import Settings
from serving.db import decisions, stop_reason
from serving.evidence.yaml_notes import comment_notes


@dataclass(frozen=True)
class FeatureSource:
    """A model input as ``configs/features.yaml`` defines it: what it is and where it comes
    from (the contract table, or ``derived`` from other features)."""

    name: str
    source: str
    aggregation: str | None
    window_days: int | None
    domain: str
    kind: str
    direction: int
    description: str
    protected: bool


@dataclass(frozen=True)
class KeptAudit:
    """The newest kept fairness report of the version: its content and one hash."""

    content: dict[str, Any]
    json_path: Path
    html_path: Path
    sha256: str
    audit_id: str | None


@dataclass(frozen=True)
class Sources:
    """Everything on record about one model version that the pack's documents state."""

    model_name: str
    version: str
    run_id: str
    tags: dict[str, str]
    config: dict[str, Any]
    metrics: dict[str, float]
    params: dict[str, str]
    card: str | None
    population: str | None
    inputs: list[FeatureSource]
    audit_only: list[FeatureSource]
    audit: KeptAudit | None
    entries: list[LedgerEntry]
    ledger_ok: bool
    policy: FairnessPolicy
    monitoring: MonitoringConfig
    monitoring_notes: dict[str, str]
    stopped: str | None
    decisions_by_unit: list[dict[str, Any]]
    model: Any = None  # training.model.RiskModel: the version itself (a person's explanation)
    config_digests: dict[str, str] = field(default_factory=dict)

    @property
    def is_champion(self) -> bool:
        from fairness.promotion import champion_history

        history = champion_history(self.entries, self.model_name)
        return bool(history) and history[-1] == self.version


def check_version(version: str) -> str:
    """A registered version is a number: anything else is refused naming it."""
    if not version.isdigit():
        raise InputError(f"VERSION {version!r}: a registered version number (e.g. 3) is expected")
    return version


def load_model_version(model_name: str, version: str, *, home: Path, uri: str) -> Any:
    """`fairness.audit.load_version`, with a version the registry does not hold refused by
    name (MLflow's own error is a traceback about a REST resource)."""
    from mlflow.exceptions import MlflowException

    from fairness.audit import load_version

    try:
        return load_version(model_name, check_version(version), home=home, uri=uri)
    except MlflowException as exc:
        raise NotFoundError(
            f"{model_name} version {version} is not in the model registry at {uri}"
        ) from exc


@dataclass(frozen=True)
class RunRecord:
    """What the version's MLflow run logged: metrics, parameters and the model card."""

    metrics: dict[str, float]
    params: dict[str, str]
    card: str | None


def run_record(run_id: str, uri: str, model_name: str, version: str) -> RunRecord:
    """The run's metrics and parameters, and the model card: the run's ``model_card.md``
    (the whole card), else the registered version's description (cut to fit the registry)."""
    import mlflow

    from training.tracking import tracking_session

    with tracking_session(uri) as client:
        run = client.get_run(run_id)
        card: str | None
        try:
            card = mlflow.artifacts.load_text(f"runs:/{run_id}/model_card.md")
        except Exception:  # an older run without the artifact
            card = client.get_model_version(model_name, version).description or None
    metrics = {k: float(v) for k, v in run.data.metrics.items()}
    return RunRecord(metrics, dict(run.data.params), card)


def feature_sources(model_inputs: list[str]) -> tuple[list[FeatureSource], list[FeatureSource]]:
    """The model inputs (in the model's order) and the audit-only features, from the feature
    definitions; an input the definitions no longer hold is listed with source ``unknown``."""
    from features.frames.definitions import load_spec

    spec = load_spec()

    def of(name: str) -> FeatureSource:
        try:
            f = spec.feature(name)
        except Exception:
            return FeatureSource(name, "unknown", None, None, "–", "–", 0, "not in the spec", False)
        agg = f.aggregation.value if f.aggregation is not None else (f.op and f.op.value)
        return FeatureSource(
            f.name,
            f.source,
            agg,
            f.window_days,
            f.domain.value,
            f.kind.value,
            f.direction,
            f.description,
            f.protected,
        )

    return [of(n) for n in model_inputs], [of(n) for n in spec.protected_features()]


def kept_audit(home: Path, model_name: str, version: str) -> KeptAudit | None:
    folder = latest_report(version_dir(home, model_name, version))
    if folder is None:
        return None
    json_path = folder / f"{STEM}.json"
    content = json.loads(json_path.read_text(encoding="utf-8"))
    return KeptAudit(
        content, json_path, folder / f"{STEM}.html", sha256_file(json_path), audit_id_of(folder)
    )


def decisions_by_unit(engine: sa.Engine) -> list[dict[str, Any]]:
    """Per region, district and action: how many decisions and how many overrides. Counts
    only: no person leaves the deployment in the pack's oversight figures."""
    d = decisions.c
    query = (
        sa.select(
            d.region,
            d.district,
            d.action,
            sa.func.count().label("decisions"),
            sa.func.sum(sa.case((d.override.is_(True), 1), else_=0)).label("overrides"),
        )
        .group_by(d.region, d.district, d.action)
        .order_by(d.region, d.district, d.action)
    )
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def gather(
    model_name: str, version: str, *, home: Path, uri: str, ledger: Ledger, engine: sa.Engine
) -> Sources:
    """Read everything the documents state about ``version`` (see the module's docstring)."""
    ctx = load_model_version(model_name, version, home=home, uri=uri)
    from fairness.audit import population_of_validity

    run = run_record(ctx.run_id, uri, model_name, ctx.version)
    inputs, audit_only = feature_sources(list(ctx.model.feature_names))
    recorded = ledger_version(model_name, ctx.version)
    monitoring_file = find_config(MONITORING_FILE)
    policy_file = find_config(POLICY_FILE)
    return Sources(
        model_name=model_name,
        version=ctx.version,
        run_id=ctx.run_id,
        tags=dict(ctx.tags),
        config=dict(ctx.config),
        metrics=run.metrics,
        params=run.params,
        card=run.card,
        population=population_of_validity(ctx),
        inputs=inputs,
        audit_only=audit_only,
        audit=kept_audit(home, model_name, ctx.version),
        entries=[e for e in ledger.entries() if e.version == recorded],
        ledger_ok=ledger.verify().ok,
        policy=load_policy(policy_file),
        monitoring=load_monitoring_config(monitoring_file),
        monitoring_notes=comment_notes(monitoring_file.read_text(encoding="utf-8")),
        stopped=stop_reason(engine),
        decisions_by_unit=decisions_by_unit(engine),
        model=ctx.model,
        config_digests={
            "configs/monitoring.yaml": sha256_file(monitoring_file),
            "configs/fairness.yaml": sha256_file(policy_file),
            "configs/features.yaml": sha256_file(find_config("features.yaml")),
        },
    )


@dataclass(frozen=True)
class MonitoringOnRecord:
    """The newest monitoring check of a version: when, what it breached, and its per-group
    figures (``{"figure", "group_column", "group", "labels", "value"}``; aggregated only)."""

    as_of: str
    checked_at: str
    breaches: int
    reaudit: list[str]
    figures: list[dict[str, Any]]


def monitoring_results(
    model_name: str, version: str, settings: Settings | None = None
) -> MonitoringOnRecord | None:
    """The newest monitoring check of ``version`` with its group-labelled figures only (never
    a person, nor an officer or unit), or None when no check is on record or this deployment
    has no monitoring store yet."""
    try:
        from fairness.monitoring.check import figures
        from fairness.monitoring.store import open_monitoring_store
    except ImportError:  # a deployment from before the monitoring store
        return None
    store = open_monitoring_store(settings)
    try:
        check = store.latest(model_name, version)
    except sa.exc.SQLAlchemyError:
        return None
    finally:
        store.dispose()
    if check is None:
        return None
    rows: list[dict[str, Any]] = []
    for f in figures(check.result):
        labels = dict(f.labels)
        if "group_column" not in labels or "unit" in labels:
            continue
        column, group = labels.pop("group_column"), labels.pop("group", "")
        rows.append(
            {
                "figure": f.name,
                "group_column": column,
                "group": group,
                "labels": labels,
                "value": f.value,
            }
        )
    result = check.result
    return MonitoringOnRecord(
        result.as_of.isoformat(),
        result.checked_at.isoformat(timespec="seconds"),
        len(result.breaches),
        list(result.reaudit),
        rows,
    )
