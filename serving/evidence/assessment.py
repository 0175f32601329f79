"""The draft fundamental-rights impact assessment and the post-market monitoring plan, built
from `serving.evidence.sources.Sources` (pure).

The assessment is a draft: riskcast states what it knows (who is scored, the audit's risks per
group, the oversight it enforces, the complaint path it supports); the deployer completes the
parts only people can (consultation, the decision to deploy) and signs it. The monitoring
plan states what is watched, at which thresholds and why (the rationale is the comment beside
each number in ``configs/monitoring.yaml``), and who acts. Monitoring figures appear only
aggregated per group; no person's data leaves the deployment through the pack.
"""

from __future__ import annotations

from typing import Any

from fairness.ledger import LedgerEntry
from fairness.report import LABELS
from fairness.results import AuditResult
from serving.evidence.documents import (
    NO_AUDIT,
    audit_of,
    card_section,
    estimate_text,
    make_document,
)
from serving.evidence.model import Cell, Document, Section, Table, table
from serving.evidence.sources import MonitoringOnRecord, Sources

NO_MONITORING = "no monitoring check on record"
SHOWN_MONITORING = (
    "The newest check of this version: aggregated per-group figures only (no person, officer "
    "or unit); no person's data leaves the deployment."
)
COMPLAINT_STEPS = [
    "A person may ask what was decided about them and why: an auditor exports their decision "
    "history with its explanation (`riskcast evidence-pack VERSION --person ID`); the export "
    "is itself written to the access log.",
    "The complaint is reviewed by an auditor who did not take the decision: the access log "
    "shows every read of the person (who, when, for which purpose), the decisions table every "
    "decision and override with its reason.",
    "The model never decides: an officer's decision can be corrected by recording a new one; "
    "a disagreement with the score is an override and needs a reason.",
    "If the complaint shows a fault of the model (e.g. a group treated differently), the "
    "admin can stop scoring at once (the stop switch) and the champion can be rolled back "
    "(`riskcast rollback`); both are recorded.",
    "Erasure where the law gives it is handled by the deployer's data-protection officer.",
]
WHO_ACTS: list[dict[str, Cell]] = [
    {
        "role": "data_scientist",
        "acts on": "input and score drift; a label-free estimate below its band",
        "how": "investigates the register change; retrains and submits a challenger to the gate",
    },
    {
        "role": "auditor",
        "acts on": "a group's estimated or realised disparity or calibration "
        "beyond the policy; the feedback-loop indicator",
        "how": "re-audits the champion "
        "(`riskcast audit`), reviews overrides, may require a rollback",
    },
    {
        "role": "admin",
        "acts on": "a breach confirmed by the auditor, or any doubt about serving safely",
        "how": "turns the stop switch on (scores withheld at once), rolls the champion back",
    },
    {
        "role": "officer",
        "acts on": "a score that contradicts what they know",
        "how": "records a disagreement (override) with a reason; the decision is theirs",
    },
]


# --------------------------------------------------------------------------- the assessment
def risk_rows(audit: AuditResult, binding: set[str]) -> list[dict[str, Cell]]:
    """Disparities at the operating threshold that the audit could judge, largest first,
    with whether the policy binds the metric."""
    rows: list[dict[str, Any]] = []
    for attr in audit.attributes:
        for d in attr.disparities:
            if d.point != "threshold" or not d.sufficient or d.difference.value is None:
                continue
            rows.append(
                {
                    "attribute": attr.attribute,
                    "group": d.group,
                    "reference": attr.reference,
                    "metric": LABELS.get(d.metric, d.metric),
                    "difference [CI]": estimate_text(d.difference),
                    "ratio [CI]": estimate_text(d.ratio),
                    "binding": d.metric in binding,
                    "_size": abs(d.difference.value),
                }
            )
    rows.sort(key=lambda r: -r["_size"])
    return [{k: v for k, v in r.items() if k != "_size"} for r in rows]


def group_sizes(audit: AuditResult) -> list[dict[str, Cell]]:
    return [
        {
            "attribute": a.attribute,
            "group": g.group,
            "n": g.n,
            "positives": g.positives,
            "evidence": "ok" if g.sufficient else "insufficient",
        }
        for a in audit.attributes
        if " × " not in a.attribute
        for g in a.groups
    ]


def ledger_rows(entries: list[LedgerEntry]) -> list[dict[str, Cell]]:
    return [
        {
            "seq": e.seq,
            "at": e.at.isoformat(timespec="seconds"),
            "kind": e.kind,
            "decision": e.decision,
            "actor": e.actor,
            "role": e.role,
        }
        for e in entries
    ]


def impact_assessment(src: Sources, generated_at: str) -> Document:
    audit = audit_of(src)
    binding: set[str] = {m.name for m in src.policy.metrics if m.binding}
    content = src.audit.content if src.audit else {}
    decision = content.get("decision", {})
    risks = Section(
        title="Risks per group",
        paragraphs=[
            NO_AUDIT
            if audit is None
            else f"From the fairness audit (gate outcome {decision.get('outcome')}); the policy "
            f"binds {', '.join(sorted(binding))} (configs/fairness.yaml). Disparities versus "
            "each attribute's reference group at the operating threshold, largest first.",
        ],
        items=[str(r) for r in decision.get("reasons", []) if not str(r).startswith("PASS")],
        tables=[]
        if audit is None
        else [
            table("disparities at the operating threshold", risk_rows(audit, binding)),
            *(
                [
                    table(
                        "proxies: how well the inputs predict each protected attribute",
                        content["proxies"],
                    )
                ]
                if content.get("proxies")
                else []
            ),
            *(
                [
                    table(
                        "label bias: recorded against true rates (simulator truth)",
                        content["label_bias"],
                    )
                ]
                if content.get("label_bias")
                else []
            ),
        ],
    )
    sections = [
        Section(
            title="Purpose and process",
            paragraphs=card_section(src.card, "Intended use"),
            items=card_section(src.card, "Not for use"),
        ),
        Section(
            title="Who is affected",
            paragraphs=[
                f"Scored: {src.population or 'no population of validity declared'}. Everyone "
                "else is answered 'outside the population' and never scored.",
                "Affected as well: the officers who act on the lists, and the communities of "
                "the regions the lists are drawn from (attention follows the list).",
            ],
            tables=[table("groups audited (out-of-time test snapshot)", group_sizes(audit))]
            if audit
            else [],
        ),
        risks,
        Section(
            title="Oversight measures",
            facts={
                "stop switch": f"ON: {src.stopped}" if src.stopped else "off (scores are served)",
                "promotion ledger": "verifies" if src.ledger_ok else "DOES NOT VERIFY",
                "access log": "every read of a person (API and pages) is logged, hash-chained "
                "and anchored outside the database (`riskcast access-log verify`)",
                "overrides": "an officer's disagreement with the score is recorded with a reason",
                "champion": "this version" if src.is_champion else "not this version",
            },
            tables=[
                table(
                    "decisions and overrides per unit and action (counts only)",
                    src.decisions_by_unit,
                    ["region", "district", "action", "decisions", "overrides"],
                ),
                table("ledger entries of this version", ledger_rows(src.entries)),
            ],
        ),
        Section(title="What happens on a complaint", items=COMPLAINT_STEPS),
        Section(
            title="To be completed by the deployer",
            items=[
                "consultation of the persons affected or their representatives;",
                "the legal basis and the decision to deploy;",
                "the name and signature of the person accountable, and the date.",
            ],
        ),
    ]
    return make_document(
        "impact_assessment",
        "Fundamental-rights impact assessment (draft)",
        src,
        generated_at,
        sections,
        [] if audit else [NO_AUDIT],
    )


# --------------------------------------------------------------------------- the plan
def threshold_rows(src: Sources) -> list[dict[str, Cell]]:
    """Every setting of the monitoring configuration with its value and its rationale."""
    rows: list[dict[str, Cell]] = []
    for part, values in src.monitoring.model_dump(mode="json").items():
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            rows.append(
                {
                    "setting": f"{part}.{key}",
                    "value": str(value),
                    "rationale": src.monitoring_notes.get(f"{part}.{key}"),
                }
            )
    return rows


def monitoring_tables(record: MonitoringOnRecord, psi_alert: float) -> list[Table]:
    """The check's per-group figures: every figure but the per-input ones as they are, and
    the per-input drift summarised per group (the largest PSI, its input, how many inputs
    reach the alert level): one row per group instead of one per group and input."""
    plain = [
        {
            "figure": r["figure"],
            "group": f"{r['group_column']}={r['group']}",
            "labels": ", ".join(f"{k}={v}" for k, v in sorted(r["labels"].items())),
            "value": r["value"],
        }
        for r in record.figures
        if "input" not in r["labels"]
    ]
    drift: dict[tuple[str, str], dict[str, Any]] = {}
    for r in record.figures:
        if r["figure"] != "input_psi":
            continue
        key = (r["group_column"], r["group"])
        row = drift.setdefault(
            key,
            {
                "group": f"{key[0]}={key[1]}",
                "largest input PSI": -1.0,
                "input": None,
                f"inputs with PSI >= {psi_alert:g}": 0,
            },
        )
        if r["value"] > row["largest input PSI"]:
            row["largest input PSI"], row["input"] = r["value"], r["labels"].get("input")
        row[f"inputs with PSI >= {psi_alert:g}"] += int(r["value"] >= psi_alert)
    return [
        table(
            "performance, scores and calibration per group",
            plain,
            ["figure", "group", "labels", "value"],
        ),
        table(
            "input drift per group (PSI against the audited test snapshot)", list(drift.values())
        ),
    ]


def monitoring_plan(
    src: Sources, generated_at: str, results: MonitoringOnRecord | None = None
) -> Document:
    """The plan; ``results``: the newest monitoring check on record, if a monitoring store
    holds one (else the plan says there is none)."""
    notes = src.monitoring_notes
    parts = [k for k, v in src.monitoring.model_dump(mode="json").items() if isinstance(v, dict)]
    sections = [
        Section(
            title="What is monitored",
            paragraphs=[
                "Every figure overall and per group of "
                + ", ".join(src.monitoring.group_columns)
                + ", for the champion, at each materialisation and on demand.",
            ],
            items=[f"{p}: {notes.get(p, '')}".rstrip(": ") for p in parts],
        ),
        Section(
            title="Thresholds and rationale",
            paragraphs=[
                "From configs/monitoring.yaml (config version "
                f"{src.monitoring.config_version}): each number with its reason."
            ],
            tables=[table("thresholds", threshold_rows(src), ["setting", "value", "rationale"])],
        ),
        Section(
            title="Who acts",
            tables=[table("roles", list(WHO_ACTS), ["role", "acts on", "how"])],
            items=[
                "A breach is recorded in the promotion ledger and shown to auditors; a "
                "disparity beyond the fairness policy in two consecutive checks flags the "
                "champion for re-audit.",
            ],
        ),
        Section(
            title="Monitoring results on record",
            paragraphs=[NO_MONITORING if results is None else SHOWN_MONITORING],
            facts={}
            if results is None
            else {
                "as of": results.as_of,
                "checked at": results.checked_at,
                "breaches": results.breaches,
                "re-audit due": "; ".join(results.reaudit) or "no",
            },
            tables=[]
            if results is None
            else monitoring_tables(results, src.monitoring.drift.psi_alert),
        ),
    ]
    gaps = [] if results is not None else [NO_MONITORING]
    return make_document(
        "monitoring_plan", "Post-market monitoring plan", src, generated_at, sections, gaps
    )
