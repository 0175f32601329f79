"""`riskcast audit-table`: audit any table of scores and outcomes and write the report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fairness.policy import MODEL_NAME, load_policy


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
        from fairness.table_run import parse_list, parse_references, run_audit_table

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
    """`riskcast audit VERSION`, `riskcast promote VERSION`, `riskcast rollback`.

    Their implementations (MLflow, fairlearn, scikit-learn) are imported when a command runs,
    so `riskcast --help` and unrelated commands start fast."""

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
        from fairness.ledger import open_ledger
        from fairness.promotion import audit_and_record

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
        from fairness.ledger import open_ledger
        from fairness.promotion import promote

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
        from fairness.ledger import open_ledger
        from fairness.promotion import rollback

        _, uri = _edges()
        current, previous = rollback(
            open_ledger(), by=by, reason=reason, role=role, uri=uri, model_name=model_name
        )
        Console().print(f"champion: v{current} -> v{previous} (recorded in the ledger)")
