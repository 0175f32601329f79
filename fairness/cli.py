"""`riskcast audit-table`: audit any table of scores and outcomes and write the report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.console import Console

from fairness.gate import fairness_checks
from fairness.policy import MISSING_GROUP, FairnessPolicy, load_policy
from fairness.report import WrittenReport, report_content, write_report
from fairness.tableaudit import audit_frame, file_digest, read_table, summary_table
from features.errors import InputError


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
    audit: dict[str, Any]
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
    outcome = "fail" if any(c.outcome == "fail" for c in checks) else "pass"
    if outcome == "pass" and any(c.outcome == "insufficient_evidence" for c in checks):
        outcome = "insufficient_evidence"
    content = report_content(
        audit,
        title=f"Fairness audit of {score} in {data.name}",
        model_version=None,
        data_digests={data.name: file_digest(data)},
        policy_version=pol.policy_version,
        decision={"outcome": outcome, "reasons": [c.reason() for c in checks]},
        notes=[
            "A third-party table: audited against the policy's binding disparity "
            "tolerances only (no champion comparison).",
        ],
        extra={"rationale": pol.rationale},
    )
    if mitigation and threshold is not None:
        content["mitigation"] = table_mitigation(frame, audit, label, score, threshold)
    written = write_report(content, out)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(
            json.dumps(summary_table(audit), indent=2, default=str) + "\n", encoding="utf-8"
        )
    return TableAuditOutcome(audit, content, written)


def table_mitigation(
    frame: pl.DataFrame, audit: dict[str, Any], label: str, score: str, threshold: float
) -> dict[str, Any]:
    """The mitigation what-if per audited attribute (see `fairness.mitigation`)."""
    from fairness.mitigation import what_if

    y = frame[label].cast(pl.Float64).to_numpy()
    s = frame[score].cast(pl.Float64).to_numpy()
    out: dict[str, Any] = {}
    for attr in audit["attributes"]:
        groups = frame[attr["attribute"]].cast(pl.String).fill_null(MISSING_GROUP).to_numpy()
        out[attr["attribute"]] = what_if(y, s, groups, threshold, attr["reference"])
    return out


def register(app: typer.Typer) -> None:
    register_gate(app)

    @app.command("audit-table")
    def audit_table(
        data: Annotated[Path, typer.Option("--data", help="CSV or Parquet table")],
        label: Annotated[str, typer.Option("--label", help="0/1 outcome column")],
        score: Annotated[str, typer.Option("--score", help="score column (higher = riskier)")],
        protected: Annotated[str, typer.Option("--protected", help="comma-separated columns")],
        out: Annotated[Path, typer.Option("--out", help="directory for report HTML + JSON")],
        threshold: Annotated[
            float | None, typer.Option("--threshold", help="flag score >= X (default: policy)")
        ] = None,
        reference: Annotated[
            str | None, typer.Option("--reference", help="COL=GROUP,... (default: largest)")
        ] = None,
        json_file: Annotated[
            Path | None, typer.Option("--json", help="per-group summary with intervals")
        ] = None,
        n_boot: Annotated[int | None, typer.Option("--n-boot", help="bootstrap replicates")] = None,
        min_group_size: Annotated[int | None, typer.Option("--min-group-size")] = None,
        policy_file: Annotated[Path | None, typer.Option("--policy")] = None,
        mitigation: Annotated[
            bool, typer.Option("--mitigation", help="what-if: group thresholds (off by default)")
        ] = False,
    ) -> None:
        """Audit any table of scores and outcomes (per group, with intervals) and write a report."""
        pol = load_policy(policy_file)
        result = run_audit_table(
            data,
            label,
            score,
            parse_list(protected, "--protected"),
            out,
            threshold=pol.threshold if threshold is None else threshold,
            references=parse_references(reference),
            policy=pol,
            n_boot=n_boot,
            min_group_size=min_group_size,
            json_path=json_file,
            mitigation=mitigation,
        )
        console = Console()
        for attr in result.audit["attributes"]:
            console.print(f"[bold]{attr['attribute']}[/] (reference {attr['reference']})")
            for row in attr["groups"]:
                at = row["points"].get("threshold", {})
                vals = "  ".join(
                    f"{m}={at[m]['value']:.3f}"
                    if at.get(m, {}).get("value") is not None
                    else f"{m}=–"
                    for m in ("fpr", "fnr", "ppv")
                )
                note = "" if row["status"] == "ok" else " insufficient evidence"
                console.print(f"  {row['group']:<24} n={row['n']:<6} {vals}{note}")
        console.print(f"decision: {result.content['decision']['outcome']}")
        console.print(f"report: {result.written.html_path} (sha256 {result.written.html_sha256})")
        console.print(f"json:   {result.written.json_path}")


def _edges() -> tuple[Path, str]:
    from features.settings import get_settings
    from training.tracking import tracking_uri

    home = get_settings().home
    return home, tracking_uri(home)


def register_gate(app: typer.Typer) -> None:
    """`riskcast audit VERSION`, `riskcast promote VERSION`, `riskcast rollback`."""
    from fairness.ledger import open_ledger
    from fairness.promotion import MODEL_NAME, audit_and_record, promote, rollback

    @app.command("audit")
    def audit_cmd(
        version: Annotated[str, typer.Argument(help="registered version number")],
        by: Annotated[str, typer.Option("--by", help="who runs the audit")] = "riskcast",
        role: Annotated[str, typer.Option("--role")] = "data_scientist",
        model_name: Annotated[str, typer.Option("--model")] = MODEL_NAME,
        policy_file: Annotated[Path | None, typer.Option("--policy")] = None,
        mitigation: Annotated[
            bool, typer.Option("--mitigation", help="what-if: group thresholds (off by default)")
        ] = False,
    ) -> None:
        """Audit a registered version on its out-of-time test snapshot; write the report."""
        home, uri = _edges()
        result = audit_and_record(
            version, load_policy(policy_file), open_ledger(), home=home, by=by, role=role,
            uri=uri, model_name=model_name, mitigation=mitigation,
        )  # fmt: skip
        console = Console()
        console.print(f"policy checks: {result.content['decision']['outcome']}")
        for reason in result.content["decision"]["reasons"]:
            if not reason.startswith("PASS"):
                console.print(f"  {reason}", highlight=False)
        console.print(f"report: {result.written.html_path}")
        console.print(f"sha256: {result.written.html_sha256}")

    @app.command("promote")
    def promote_cmd(
        version: Annotated[str, typer.Argument(help="registered version number")],
        by: Annotated[str, typer.Option("--by", help="who asks for the promotion")],
        reason: Annotated[str, typer.Option("--reason", help="why")],
        role: Annotated[str, typer.Option("--role")] = "data_scientist",
        override: Annotated[bool, typer.Option("--override", help="auditor only")] = False,
        model_name: Annotated[str, typer.Option("--model")] = MODEL_NAME,
        policy_file: Annotated[Path | None, typer.Option("--policy")] = None,
    ) -> None:
        """Move `champion` to VERSION if its audit passes the gate (or an auditor overrides)."""
        home, uri = _edges()
        outcome = promote(
            version, load_policy(policy_file), open_ledger(), home=home, by=by, reason=reason,
            role=role, override=override, uri=uri, model_name=model_name,
        )  # fmt: skip
        console = Console()
        console.print(f"gate: {outcome.decision.outcome}")
        for r in outcome.decision.reasons:
            if not r.startswith("PASS"):
                console.print(f"  {r}", highlight=False)
        console.print(f"report: {outcome.report}")
        if outcome.overridden:
            console.print(f"OVERRIDE by {by} (auditor): v{version} is champion; recorded")
        elif outcome.promoted:
            console.print(f"v{version} is now champion")
        else:
            console.print(f"refused: v{version} stays {model_name}@challenger")
            raise typer.Exit(1)

    @app.command("rollback")
    def rollback_cmd(
        by: Annotated[str, typer.Option("--by")],
        reason: Annotated[str, typer.Option("--reason")],
        role: Annotated[str, typer.Option("--role")] = "data_scientist",
        model_name: Annotated[str, typer.Option("--model")] = MODEL_NAME,
    ) -> None:
        """Move `champion` back to the previous champion named by the ledger."""
        _, uri = _edges()
        current, previous = rollback(
            open_ledger(), by=by, reason=reason, role=role, uri=uri, model_name=model_name
        )
        Console().print(f"champion: v{current} -> v{previous} (recorded in the ledger)")
