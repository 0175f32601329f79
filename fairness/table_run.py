"""`riskcast audit-table` as a function: read a table of scores, audit it, write the report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from fairness.gate import fairness_checks, outcome_of
from fairness.policy import MISSING_GROUP, FairnessPolicy, load_policy
from fairness.report import WrittenReport, report_content, write_report
from fairness.results import AuditResult, GateDecision, MitigationWhatIf
from fairness.tableaudit import audit_frame, read_table, summary_table
from riskcast.atomic import write_text
from riskcast.digest import sha256_file
from riskcast.errors import InputError


def parse_list(text: str, what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise InputError(f"{what}: give at least one name")
    return items


def parse_references(text: str | None) -> dict[str, str]:
    """``col=group,col2=group2`` into a dict."""
    out: dict[str, str] = {}
    for item in parse_list(text, "--reference") if text else []:
        col, sep, group = item.partition("=")
        if not sep or not col.strip() or not group.strip():
            raise InputError(f"--reference {item!r}: expected COLUMN=GROUP")
        out[col.strip()] = group.strip()
    return out


@dataclass(frozen=True)
class TableAuditOutcome:
    """The typed audit and policy checks, the report's JSON content and its files."""

    audit: AuditResult
    decision: GateDecision
    content: dict[str, Any]
    written: WrittenReport


def run_audit_table(
    data: Path,
    label: str,
    score: str,
    protected: list[str],
    out: Path,
    *,
    threshold: float | None,
    references: dict[str, str] | None = None,
    policy: FairnessPolicy | None = None,
    n_boot: int | None = None,
    min_group_size: int | None = None,
    seed: int | None = None,
    json_path: Path | None = None,
    mitigation: bool = False,
) -> TableAuditOutcome:
    """Read ``data``, audit it under the policy's settings (overridable) and write the report."""
    pol = policy or load_policy()
    frame = read_table(data)
    audit = audit_frame(
        frame,
        label=label,
        score=score,
        protected=protected,
        threshold=threshold,
        capacities=pol.capacities,
        references=references,
        min_group_size=min_group_size or pol.min_group_size,
        n_boot=pol.bootstrap.n_boot if n_boot is None else n_boot,
        confidence=pol.bootstrap.confidence,
        seed=pol.bootstrap.seed if seed is None else seed,
    )
    checks = fairness_checks(audit, pol)
    decision = GateDecision(outcome=outcome_of(checks), checks=checks)
    extra: dict[str, Any] = {"rationale": pol.rationale}
    if mitigation and threshold is not None:
        extra["mitigation"] = table_mitigation(frame, audit, label, score, threshold)
    content = report_content(
        audit,
        title=f"Fairness audit of {score} in {data.name}",
        model_version=None,
        data_digests={data.name: sha256_file(data)},
        policy_version=pol.policy_version,
        decision={"outcome": decision.outcome, "reasons": [c.reason() for c in checks]},
        notes=[
            "A third-party table: audited against the policy's binding disparity "
            "tolerances only (no champion comparison).",
        ],
        extra=extra,
    )
    written = write_report(content, out)
    if json_path is not None:
        write_text(json_path, json.dumps(summary_table(audit), indent=2, default=str) + "\n")
    return TableAuditOutcome(audit, decision, content, written)


def table_mitigation(
    frame: pl.DataFrame, audit: AuditResult, label: str, score: str, threshold: float
) -> dict[str, MitigationWhatIf]:
    """The mitigation what-if per audited attribute (see `fairness.mitigation`)."""
    from fairness.mitigation import what_if_result

    y = frame[label].cast(pl.Float64).to_numpy()
    s = frame[score].cast(pl.Float64).to_numpy()
    out: dict[str, MitigationWhatIf] = {}
    for attr in audit.attributes:
        groups = frame[attr.attribute].cast(pl.String).fill_null(MISSING_GROUP).to_numpy()
        out[attr.attribute] = what_if_result(y, s, groups, threshold, attr.reference)
    return out
