"""The technical documentation and the draft fundamental-rights impact assessment, built from
`serving.evidence.sources.Sources` (pure: sources in, `Document` out).

Every figure comes from a source on record: the registry's run metrics and model card, the
kept fairness audit, the ledger, the configuration. Intervals are the audit's bootstrap
intervals where the audit has them; for the run's overall test metrics, which were logged
without one, the interval is computed from the logged figures themselves (Hanley and McNeil
1982 for the AUC, Wilson for the observed rate) and the method is stated beside it.
"""

from __future__ import annotations

import math
import re
from typing import Any

from fairness.metrics import THRESHOLD_POINT
from fairness.report import LABELS, PLOTTED
from fairness.results import AuditResult, Estimate, as_audit
from serving.evidence.model import Cell, Document, Section, table
from serving.evidence.sources import Sources

Z95 = 1.959963984540054
SCORE_COLUMNS = ("base_rate", "mean_predicted", "calibration_gap", "auc")
NO_AUDIT = "no fairness audit of this version is kept: run `riskcast audit VERSION`"


# --------------------------------------------------------------------------- small helpers
def card_section(card: str | None, heading: str) -> list[str]:
    """The lines under ``## heading`` of the model card (markdown), list markers dropped."""
    if not card:
        return []
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", card, re.M | re.S)
    if match is None:
        return []
    return [line.removeprefix("- ").strip() for line in match.group(1).splitlines() if line.strip()]


def wilson(successes: float, n: float, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (None without rows)."""
    if n <= 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def hanley_mcneil(auc: float, positives: float, negatives: float) -> tuple[float, float] | None:
    """The normal interval of an AUC from its value and the class counts (Hanley and McNeil
    1982); None when a class is empty."""
    if positives < 1 or negatives < 1:
        return None
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (
        auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)
    ) / (positives * negatives)
    half = Z95 * math.sqrt(max(var, 0.0))
    return max(0.0, auc - half), min(1.0, auc + half)


def interval_text(value: float | None, bounds: tuple[float, float] | None) -> str | None:
    if value is None:
        return None
    if bounds is None:
        return f"{value:.3f}"
    return f"{value:.3f} [{bounds[0]:.3f}, {bounds[1]:.3f}]"


def estimate_text(est: Estimate | None) -> str | None:
    if est is None or est.value is None:
        return None
    bounds = (est.low, est.high) if est.low is not None and est.high is not None else None
    return interval_text(est.value, bounds)


def _by_prefix(metrics: dict[str, float], prefix: str) -> dict[str, dict[str, float]]:
    """``prefix.<a>.<b>`` metrics as ``{a: {b: value}}``."""
    out: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        if key.startswith(prefix + "."):
            head, _, tail = key[len(prefix) + 1 :].rpartition(".")
            if head:
                out.setdefault(head, {})[tail] = value
    return out


def audit_of(src: Sources) -> AuditResult | None:
    return None if src.audit is None else as_audit(src.audit.content["audit"])


# --------------------------------------------------------------------------- metrics
def test_metrics_rows(metrics: dict[str, float]) -> list[dict[str, Cell]]:
    """One row per scorer of the out-of-time test snapshot; the model's AUC and observed rate
    with their 95 % intervals (Hanley-McNeil, Wilson) from the test rows logged."""
    rows_n = metrics.get("rows.test", 0.0)
    out: list[dict[str, Cell]] = []
    for scorer, m in sorted(_by_prefix(metrics, "test").items()):
        if scorer.startswith(("auc_diff", "gap_to_oracle")) or "auc" not in m:
            continue
        rate = m.get("observed_rate")
        positives = round(rows_n * rate) if rate is not None else 0
        auc_ci = hanley_mcneil(m["auc"], positives, rows_n - positives)
        out.append(
            {
                "scorer": scorer,
                "AUC [95 % CI]": interval_text(m["auc"], auc_ci),
                "PR-AUC": m.get("pr_auc"),
                "Brier": m.get("brier"),
                "ECE": m.get("ece"),
                "top-10 % capture": m.get("capture_top_10"),
                "mean predicted": m.get("mean_predicted"),
                "observed [95 % CI]": interval_text(rate, wilson(positives, rows_n)),
            }
        )
    return out


def auc_difference_rows(metrics: dict[str, float]) -> list[dict[str, Cell]]:
    rows: list[dict[str, Cell]] = []
    for baseline, d in sorted(_by_prefix(metrics, "test.auc_diff").items()):
        mean, sd = d.get("mean"), d.get("sd")
        bounds = (mean - Z95 * sd, mean + Z95 * sd) if mean is not None and sd is not None else None
        rows.append(
            {
                "AUC(model) − AUC(baseline)": baseline,
                "difference [95 % CI]": interval_text(mean, bounds),
            }
        )
    return rows


def period_rows(metrics: dict[str, float]) -> list[dict[str, Cell]]:
    rows: list[dict[str, Cell]] = []
    for key, m in sorted(_by_prefix(metrics, "period").items()):
        period, _, scorer = key.partition(".")
        if scorer == "model":
            rows.append(
                {
                    "as-of": period,
                    "AUC": m.get("auc"),
                    "Brier": m.get("brier"),
                    "mean predicted": m.get("mean_predicted"),
                    "observed": m.get("observed_rate"),
                }
            )
    return rows


def group_rows(audit: AuditResult) -> list[dict[str, Cell]]:
    """Per attribute and group: calibration and the error rates at the operating threshold,
    each with the audit's bootstrap interval."""
    rows: list[dict[str, Cell]] = []
    for attr in audit.attributes:
        for g in attr.groups:
            row: dict[str, Cell] = {
                "attribute": attr.attribute,
                "group": g.group + (" (reference)" if g.reference else ""),
                "n": g.n,
                "status": "ok" if g.sufficient else "insufficient evidence",
            }
            row.update({LABELS[m]: estimate_text(g.overall.get(m)) for m in SCORE_COLUMNS})
            row["calibration slope"] = g.calibration_slope
            at = g.at(THRESHOLD_POINT)
            row.update({f"{LABELS[m]} at threshold": estimate_text(at.get(m)) for m in PLOTTED})
            rows.append(row)
    return rows


# --------------------------------------------------------------------------- documents
def technical_documentation(src: Sources, generated_at: str) -> Document:
    cfg, label = src.config.get("training", {}), src.config.get("label", {})
    audit = audit_of(src)
    gaps = [] if audit else [NO_AUDIT]
    if not src.card:
        gaps.append("the run keeps no model card (model_card.md)")
    sections = [
        Section(
            title="Intended purpose",
            paragraphs=card_section(src.card, "Intended use"),
            items=card_section(src.card, "Not for use"),
        ),
        Section(
            title="Population of validity",
            paragraphs=[src.population or "the version declares no population of validity"],
            facts={
                "scope (model metadata)": src.tags.get("riskcast.scope"),
                "minimum age": cfg.get("min_age"),
            },
        ),
        Section(
            title="Data and features",
            paragraphs=[
                f"{len(src.inputs)} model inputs, computed point-in-time from the register "
                "extracts (configs/features.yaml): a feature as of T sees only rows known by "
                "the end of T. Protected attributes are never inputs; they are used by the "
                "audit only.",
            ],
            items=card_section(src.card, "Data"),
            tables=[
                table("model inputs and their sources", [vars(f) for f in src.inputs]),
                table("audit-only (protected) features", [vars(f) for f in src.audit_only]),
            ],
        ),
        Section(
            title="Training and evaluation design",
            facts={
                "label": f"{label.get('name', cfg.get('label'))}: {label.get('description', '')}",
                "horizon (days)": label.get("horizon_days"),
                "population": cfg.get("population"),
                "snapshots": str(cfg.get("snapshots")),
                "periods (tune, calibrate, test: out of time)": str(cfg.get("periods")),
                "gap between periods (days)": cfg.get("gap_days") or label.get("horizon_days"),
                "cross-validation folds": str(cfg.get("folds")),
                "tuning": f"Optuna, metric {cfg.get('search', {}).get('metric')}, "
                f"{src.params.get('trials', cfg.get('trials'))} trials; monotone constraints from "
                "the features' direction",
                "calibration": src.tags.get("riskcast.calibration"),
                "MLflow run": src.run_id,
                "code version": src.tags.get("riskcast.git_commit"),
                "dataset digest": src.tags.get("riskcast.dataset_digest"),
                "feature spec hash": src.tags.get("riskcast.feature_spec_hash"),
            },
            items=card_section(src.card, "Calibration"),
        ),
        Section(
            title="Out-of-time metrics",
            paragraphs=[
                "On the test snapshot, which no step of training saw. Intervals (95 %): the "
                "AUC's from its value and the class counts (Hanley and McNeil 1982), the "
                "observed rate's by Wilson, AUC differences from the paired bootstrap logged "
                "by training (mean ± 1.96 sd)."
            ],
            facts={"test rows": int(src.metrics.get("rows.test", 0))},
            tables=[
                table("test metrics per scorer", test_metrics_rows(src.metrics)),
                table("AUC of the model against each baseline", auc_difference_rows(src.metrics)),
                table(
                    "the model per snapshot after the tuning period (the calibration period's "
                    "snapshots fitted the calibrator; the test period's are out of time)",
                    period_rows(src.metrics),
                ),
            ],
        ),
        Section(
            title="Per-group calibration and error rates",
            paragraphs=[
                _audit_line(src) if audit else NO_AUDIT,
                f"Error rates at the operating threshold {audit.threshold}; intervals are the "
                "audit's bootstrap intervals; groups below the minimum size "
                f"({audit.min_group_size}) are insufficient evidence, never a pass."
                if audit
                else "",
            ],
            tables=[table("per group", group_rows(audit))] if audit else [],
        ),
        Section(title="Known limits", items=known_limits(src, audit)),
        Section(title="Provenance", facts=provenance(src)),
    ]
    return make_document(
        "technical_documentation", "Technical documentation", src, generated_at, sections, gaps
    )


def _audit_line(src: Sources) -> str:
    assert src.audit is not None
    decision = src.audit.content.get("decision", {})
    return (
        f"From the fairness audit {src.audit.audit_id or '(before audit ids)'} (policy "
        f"{src.audit.content.get('policy_version')}, gate outcome {decision.get('outcome')}), "
        f"report sha256 {src.audit.sha256}."
    )


def known_limits(src: Sources, audit: AuditResult | None) -> list[str]:
    limits = card_section(src.card, "Known limitations")
    if audit is not None:
        thin = [
            f"{a.attribute}={g.group} (n={g.n})"
            for a in audit.attributes
            for g in a.insufficient_groups
        ]
        if thin:
            limits.append(
                "too few persons to judge the model (insufficient evidence) in: " + ", ".join(thin)
            )
    return limits


def provenance(src: Sources) -> dict[str, Cell]:
    facts: dict[str, Cell] = {"model": f"{src.model_name} v{src.version}", "run": src.run_id}
    if src.audit is not None:
        seqs = [str(e.seq) for e in src.entries if e.report_sha256 == src.audit.sha256]
        facts["fairness report sha256"] = src.audit.sha256
        facts["recorded in the ledger at seq"] = ", ".join(seqs) or "not recorded"
    facts["ledger verifies"] = src.ledger_ok
    facts.update(src.config_digests)
    return facts


def make_document(
    kind: Any, title: str, src: Sources, generated_at: str, sections: list[Section], gaps: list[str]
) -> Document:
    return Document(
        kind=kind,
        title=f"{title}: {src.model_name} v{src.version}",
        model=src.model_name,
        version=src.version,
        generated_at=generated_at,
        sections=sections,
        gaps=gaps,
    )
