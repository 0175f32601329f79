"""`riskcast audit VERSION`: audit a registered model version on its out-of-time test snapshot.

Edges (I/O): `load_version` reads the version's run from MLflow (its `config/training.json`,
tags and the `RiskModel`); `rebuild_test_frame` rebuilds the test snapshots from the offline
store with the Step 2 dataset builder and checks the digest training recorded; `run_audit`
keeps the report in a folder of its own under ``RISKCAST_HOME/reports/<model>-v<N>/``
(`fairness.report_store`) and logs it to the version's run; it reports each phase to a
``progress`` callback (the CLI shows it on stderr). Everything between is pure:
`audit_scored_frame` (groups per attribute and intersection, overall metrics), `proxy_check`
and `label_bias`, each returning the typed models of `fairness.results`.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from fairness.metrics import audit_attribute, num, operating_points, rates
from fairness.policy import FairnessPolicy, group_columns
from fairness.report import WrittenReport, keep_report, report_content
from fairness.report_store import version_dir
from fairness.results import (
    INSUFFICIENT,
    OK,
    AuditResult,
    GateDecision,
    LabelBiasRow,
    ProxyCheck,
)
from riskcast.errors import NotFoundError
from riskcast.names import PERSON_MODEL
from training.evaluation import binary_metrics

PROXY_ROWS = 20_000


@dataclass(frozen=True)
class VersionContext:
    model_name: str
    version: str
    run_id: str
    tags: dict[str, str]
    config: dict[str, Any]
    model: Any  # training.model.RiskModel


@dataclass(frozen=True)
class VersionAudit:
    """An audited version: the typed audit and decision, the report's JSON content and files."""

    version: str
    audit: AuditResult
    content: dict[str, Any]
    written: WrittenReport
    data_digests: dict[str, str]
    decision: GateDecision | None = None
    population: str | None = None


# --------------------------------------------------------------------------- pure parts
def audit_scored_frame(
    frame: pl.DataFrame, y: np.ndarray, p: np.ndarray, policy: FairnessPolicy
) -> AuditResult:
    """The audit of probabilities ``p`` for outcomes ``y`` per protected attribute and
    intersection of ``policy`` (the frame must hold the protected columns)."""
    groups = group_columns(frame, policy)
    points = operating_points(p, policy.threshold, policy.capacities)
    refs = {a.name: a.reference for a in policy.protected}
    attributes = []
    for i, name in enumerate(groups.columns):
        values = groups[name].to_numpy()
        ref = refs.get(name)
        if ref is not None and ref not in set(values.tolist()):
            ref = None  # the configured reference is absent here: fall back to the largest
        attributes.append(
            audit_attribute(
                name,
                y,
                p,
                values,
                points,
                reference=ref,
                min_group_size=policy.min_group_size,
                n_boot=policy.bootstrap.n_boot,
                confidence=policy.bootstrap.confidence,
                seed=policy.bootstrap.seed + i,
            )
        )
    return AuditResult(
        label="label",
        score="probability",
        threshold=policy.threshold,
        capacities=list(policy.capacities),
        min_group_size=policy.min_group_size,
        bootstrap=policy.bootstrap,
        overall={k: num(v) for k, v in binary_metrics(y, p).items()},
        attributes=attributes,
    )


def _stratified_train_mask(groups: np.ndarray) -> np.ndarray:
    """Half of every group's rows (the first in the given, shuffled, order) for training: a
    group of two rows or more has rows in both halves."""
    train = np.zeros(groups.size, dtype=bool)
    for name in np.unique(groups):
        where = np.flatnonzero(groups == name)
        train[where[: (where.size + 1) // 2]] = True
    return train


def _weighted_ovr_auc(truth: np.ndarray, probs: np.ndarray, classes: np.ndarray) -> float | None:
    """One-vs-rest AUC averaged with the held-out class frequencies as weights (binary: the
    plain AUC); classes absent from ``truth`` carry no weight, None if none can be scored."""
    aucs, weights = [], []
    for j, name in enumerate(classes):
        is_c = truth == name
        if 0 < is_c.sum() < truth.size:
            aucs.append(float(roc_auc_score(is_c, probs[:, j])))
            weights.append(float(is_c.sum()))
    return float(np.average(aucs, weights=weights)) if aucs else None


def _sizes(names: np.ndarray, counts: np.ndarray) -> str:
    """``"E1 (n=29), E2 (n=8)"``, largest group first."""
    order = sorted(range(names.size), key=lambda i: (-int(counts[i]), str(names[i])))
    return ", ".join(f"{names[i]} (n={counts[i]})" for i in order)


def proxy_check(
    frame: pl.DataFrame, features: list[str], policy: FairnessPolicy, seed: int = 0
) -> list[ProxyCheck]:
    """How well the model inputs predict each protected attribute: the held-out AUC of a
    logistic regression (one-vs-rest, weighted; 0.5 = no information), and the inputs with the
    largest standardised coefficients (the strongest proxies).

    The rows are split in halves stratified by group, so every group trains and is scored.
    A group below ``min_group_size`` is left out of the model and named in ``reason``; with
    fewer than two groups at that size the attribute is ``insufficient_evidence`` (AUC None),
    never a crash of the audit. Every record (`ProxyCheck`) has the fields attribute, status,
    auc, strongest, weights and reason."""
    groups = group_columns(frame, policy)
    rows = min(frame.height, PROXY_ROWS)
    idx = np.random.default_rng(seed).permutation(frame.height)[:rows]
    cols = (pl.col(f).cast(pl.Float64).fill_nan(None) for f in features)
    x = (
        frame.select(cols)
        .select(pl.all().fill_null(pl.all().median()).fill_null(0.0))
        .to_numpy()[idx]
    )
    sd = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    minimum = max(policy.min_group_size, 2)  # a group needs a row in each half
    out: list[ProxyCheck] = []
    for attr in policy.protected:
        if attr.column in features:  # never a model input; if it were, it is its own proxy
            out.append(
                ProxyCheck(
                    attribute=attr.name, status=OK, auc=1.0, strongest=[attr.column], weights=[],
                    reason="a model input itself",
                )
            )  # fmt: skip
            continue
        g = groups[attr.name].to_numpy()[idx]
        names, counts = np.unique(g, return_counts=True)
        small = counts < minimum
        if (~small).sum() < 2:
            out.append(
                ProxyCheck(
                    attribute=attr.name, status=INSUFFICIENT, auc=None, strongest=[], weights=[],
                    reason=f"fewer than two groups reach the minimum size {minimum}, so the "
                    "training half would not hold two groups to tell apart: "
                    + _sizes(names, counts),
                )
            )  # fmt: skip
            continue
        reason = ""
        if small.any():
            reason = (
                f"left out, below the minimum size {minimum} (insufficient evidence): "
                + _sizes(names[small], counts[small])
            )
        keep = np.isin(g, names[~small])
        xk, gk = x[keep], g[keep]
        train = _stratified_train_mask(gk)
        clf = LogisticRegression(max_iter=300)
        clf.fit(xk[train], gk[train])
        held = ~train & np.isin(gk, clf.classes_)  # only groups the model was trained on
        auc = _weighted_ovr_auc(gk[held], clf.predict_proba(xk[held]), clf.classes_)
        weight = np.abs(clf.coef_).max(axis=0)
        top = np.argsort(-weight)[:3]
        out.append(
            ProxyCheck(
                attribute=attr.name,
                status=OK,
                auc=auc,
                strongest=[features[i] for i in top],
                weights=[float(weight[i]) for i in top],
                reason=reason,
            )
        )
    return out


def label_bias(
    p_true: np.ndarray, y: np.ndarray, p: np.ndarray, frame: pl.DataFrame, policy: FairnessPolicy
) -> list[LabelBiasRow]:
    """FPR / FNR per group at the threshold against recorded labels and against the
    simulator's true offending probability (expected rates with ``p_true`` as soft labels)."""
    groups = group_columns(frame, policy)
    flags = (p >= policy.threshold).astype(np.float64)
    ok = np.isfinite(p_true)
    out: list[LabelBiasRow] = []
    for attr in policy.protected:
        g = groups[attr.name].to_numpy()
        for name in sorted(set(g.tolist())):
            m = (g == name) & ok
            if m.sum() < policy.min_group_size:  # reported, never silently dropped
                out.append(
                    LabelBiasRow(
                        attribute=attr.name,
                        group=name,
                        n=int(m.sum()),
                        status=INSUFFICIENT,
                        recorded_rate=None,
                        true_rate=None,
                        fpr_recorded=None,
                        fpr_true=None,
                        fnr_recorded=None,
                        fnr_true=None,
                        reason=f"below the minimum group size {policy.min_group_size}",
                    )
                )
                continue
            rec = rates(y[m].astype(np.float64), flags[m])
            t, f = p_true[m], flags[m]
            true_fpr = float((f * (1 - t)).sum() / max((1 - t).sum(), 1e-12))
            true_fnr = float(((1 - f) * t).sum() / max(t.sum(), 1e-12))
            out.append(
                LabelBiasRow(
                    attribute=attr.name,
                    group=name,
                    n=int(m.sum()),
                    status=OK,
                    recorded_rate=float(y[m].mean()),
                    true_rate=float(t.mean()),
                    fpr_recorded=num(float(rec["fpr"])),
                    fpr_true=true_fpr,
                    fnr_recorded=num(float(rec["fnr"])),
                    fnr_true=true_fnr,
                    reason=None,
                )
            )
    return out


# --------------------------------------------------------------------------- edges
def load_version(name: str, version: str, *, home: Path, uri: str | None = None) -> VersionContext:
    """The version's run id, tags, logged training config and `RiskModel` from MLflow."""
    import mlflow

    from training.tracking import download_risk_model, tracking_session, tracking_uri

    uri = uri or tracking_uri(home)
    with tracking_session(uri) as client:
        try:
            mv = client.get_model_version(name, version)
        except Exception as exc:  # MLflow raises its own exception type
            raise NotFoundError(f"model {name} has no version {version}") from exc
        run_id = str(mv.run_id)
        tags = dict(mv.tags)
        target = Path(tempfile.mkdtemp(prefix="riskcast-audit-"))
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="config/training.json", dst_path=str(target)
        )
    config = json.loads(Path(path).read_text(encoding="utf-8"))
    model = download_risk_model(name, version, home=home, uri=uri)
    return VersionContext(name, str(mv.version), run_id, tags, config, model)


def rebuild_test_frame(ctx: VersionContext, home: Path) -> tuple[pl.DataFrame, str]:
    """The version's out-of-time test snapshots rebuilt from the store, and their digest."""
    from features.frames.definitions import load_spec
    from features.store.offline import OfflineStore
    from training.config import TrainingConfig
    from training.dataset import add_extra_inputs, build_dataset, dataset_digest
    from training.labels import LabelDefinition
    from training.splits import select_dates, split_periods

    cfg = TrainingConfig.model_validate(ctx.config["training"])
    label = LabelDefinition.model_validate(ctx.config["label"])
    gap = label.horizon_days if cfg.gap_days is None else cfg.gap_days
    split = split_periods(cfg.snapshots.dates(), cfg.periods, gap)
    ds = build_dataset(
        OfflineStore(home), load_spec(), split.test, cfg.population, label, cfg.label, cfg.min_age
    )
    ds = add_extra_inputs(ds, cfg.extra_inputs)
    test = select_dates(ds.frame, split.test)
    return test, dataset_digest(test)


def population_of_validity(ctx: VersionContext) -> str | None:
    """What the audited (and served) population is: the version's declared scope (None: the
    version declares none and cannot be served)."""
    from features.frames.scope import PopulationScope

    declared = ctx.model.metadata.get("scope")
    if declared is None:
        return None
    scope = PopulationScope.model_validate(declared)
    return f"{scope.describe()}; the test snapshot audited here is drawn from it"


def run_audit(
    version: str,
    policy: FairnessPolicy,
    *,
    home: Path,
    model_name: str = PERSON_MODEL,
    uri: str | None = None,
    decide_fn: Callable[[AuditResult], GateDecision] | None = None,
    mitigation: bool = False,
    progress: Callable[[str], None] | None = None,
) -> VersionAudit:
    """Audit ``version`` and keep its report (HTML + JSON) in a new folder under
    ``home/reports/<model>-v<N>/``; with ``decide_fn`` the report (and the result) carries the
    gate decision it returns. ``progress`` hears each phase (the audit takes seconds)."""
    from fairness.report import log_report_to_mlflow
    from training.tracking import tracking_uri
    from training.truth import oracle_for_run

    say = progress or (lambda message: None)
    say(f"v{version}: loading the model and its training config from MLflow")
    ctx = load_version(model_name, version, home=home, uri=uri)
    say(f"v{version}: rebuilding the out-of-time test snapshot from the store")
    frame, digest = rebuild_test_frame(ctx, home)
    say(f"v{version}: scoring {frame.height:,} rows")
    y = frame["label"].cast(pl.Float64).to_numpy()
    p = np.asarray(ctx.model.predict_proba(frame), dtype=np.float64)
    say(
        f"v{version}: group metrics with bootstrap intervals ({policy.bootstrap.n_boot} replicates)"
    )
    audit = audit_scored_frame(frame, y, p, policy)
    features = list(ctx.model.feature_names)
    notes: list[str] = []
    recorded = ctx.tags.get("riskcast.dataset_digest.test")
    if recorded and recorded != digest:
        notes.append(
            f"the rebuilt test snapshot ({frame.height} rows) has digest {digest}; training "
            f"recorded {recorded} for its test snapshot (both are listed under data digests)"
        )
    population = population_of_validity(ctx)
    extra: dict[str, Any] = {
        "rationale": policy.rationale,
        "run_id": ctx.run_id,
        "population": population,
    }
    if features:
        say(f"v{version}: proxy check (do the inputs predict the protected attributes?)")
        extra["proxies"] = proxy_check(frame, features, policy, policy.bootstrap.seed)
    horizon = int(ctx.config["label"]["horizon_days"])
    p_true = oracle_for_run(ctx.tags, frame, horizon)
    if p_true is not None and np.isfinite(p_true).any():
        extra["label_bias"] = label_bias(p_true, y, p, frame, policy)
        notes.append("label bias: see recorded vs true rates per group (simulator truth)")
    if mitigation:
        from fairness.mitigation import what_if_result

        groups = group_columns(frame, policy)
        extra["mitigation"] = {
            a.attribute: what_if_result(
                y, p, groups[a.attribute].to_numpy(), policy.threshold, a.reference
            )
            for a in audit.attributes
            if a.attribute in {x.name for x in policy.protected}
        }
    digests = {"test": digest} | ({"test (recorded by training)": recorded} if recorded else {})
    decision = decide_fn(audit) if decide_fn else None
    content = report_content(
        audit,
        title=f"Fairness audit of {model_name} v{ctx.version}",
        model_version=f"{model_name} v{ctx.version}",
        data_digests=digests,
        policy_version=policy.policy_version,
        decision=decision,
        notes=notes,
        extra=extra,
    )
    say(f"v{version}: writing the report (figures, HTML, JSON)")
    written = keep_report(content, version_dir(home, model_name, ctx.version))
    say(f"v{version}: attaching the report to the MLflow run")
    log_report_to_mlflow(ctx.run_id, written, uri or tracking_uri(home))
    return VersionAudit(ctx.version, audit, content, written, digests, decision, population)
