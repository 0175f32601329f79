"""`riskcast audit-table`, `audit`, `promote`, `rollback`: the fairness stage's commands.

`audit` and `promote` take seconds (the test snapshot is rebuilt, bootstrapped and plotted):
they show each phase on stderr, as the other long commands do. A report's one hash is the
sha256 of its JSON (`fairness.report_store`); the commands print it as the ledger records it.

An override (`promote --override`) is authenticated through the `riskcast.auth.Authenticator`
the command root passes to `register` (the service's users table): this stage never imports
the service.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from fairness.commands import (
    ByOption,
    HomeOption,
    OverrideOption,
    PolicyOption,
    ReasonOption,
    RequesterOption,
    RequesterRoleOption,
    RoleOption,
    TokenFileOption,
    approve,
    print_gate,
    print_outcome,
    print_report,
)
from fairness.commands import edges as _edges  # a name of this module: the tests replace it
from fairness.commands import progress_line as _progress
from fairness.policy import load_policy
from fairness.results import Estimate
from riskcast.auth import AuthenticatorFactory
from riskcast.names import PERSON_MODEL

ModelOption = Annotated[str, typer.Option("--model", help="registered model name")]
MitigationOption = Annotated[
    bool, typer.Option("--mitigation", help="what-if: group thresholds (off by default)")
]


def register(app: typer.Typer, *, authenticator: AuthenticatorFactory | None = None) -> None:
    """Add the fairness commands; ``authenticator`` opens the users that prove an override
    (without it every override is refused)."""
    register_gate(app, authenticator=authenticator)

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
        min_group_size: Annotated[
            int | None,
            typer.Option(
                "--min-group-size",
                help="groups smaller than this: insufficient evidence (default: policy)",
            ),
        ] = None,
        policy_file: PolicyOption = None,
        mitigation: MitigationOption = False,
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
        for attr in result.audit.attributes:
            console.print(f"[bold]{attr.attribute}[/] (reference {attr.reference})")
            for row in attr.groups:
                at = row.at("threshold")
                vals = "  ".join(
                    f"{m}={value:.3f}" if (value := _value(at.get(m))) is not None else f"{m}=–"
                    for m in ("fpr", "fnr", "ppv")
                )
                note = "" if row.sufficient else " insufficient evidence"
                console.print(f"  {row.group:<24} n={row.n:<6} {vals}{note}")
        console.print(f"decision: {result.decision.outcome}")
        console.print(f"report: {result.written.html_path}")
        console.print(f"json:   {result.written.json_path}")
        console.print(f"sha256 (of the JSON): {result.written.sha256}")


def _value(est: Estimate | None) -> float | None:
    return None if est is None else est.value


def register_gate(app: typer.Typer, *, authenticator: AuthenticatorFactory | None = None) -> None:
    """`riskcast audit VERSION`, `riskcast promote VERSION`, `riskcast rollback`.

    Their implementations (MLflow, fairlearn, scikit-learn) are imported when a command runs,
    so `riskcast --help` and unrelated commands start fast."""

    @app.command("audit")
    def audit_cmd(
        version: Annotated[str, typer.Argument(help="registered version number")],
        by: ByOption = "riskcast",
        role: RoleOption = "data_scientist",
        model_name: ModelOption = PERSON_MODEL,
        policy_file: PolicyOption = None,
        mitigation: MitigationOption = False,
        home: HomeOption = None,
    ) -> None:
        """Audit a registered version on its out-of-time test snapshot; keep the report (every
        audit in a folder of its own) and record its sha256 in the ledger."""
        from fairness.ledger import open_ledger
        from fairness.promotion import audit_and_record

        home, uri = _edges()
        with _progress(f"audit of v{version}") as progress:
            result = audit_and_record(
                version, load_policy(policy_file), open_ledger(), home=home, by=by, role=role,
                uri=uri, model_name=model_name, mitigation=mitigation, progress=progress,
            )  # fmt: skip
        console = Console()
        print_gate(console, result.decision, "policy checks")
        print_report(console, result.written)

    @app.command("promote")
    def promote_cmd(
        version: Annotated[str, typer.Argument(help="registered version number")],
        reason: ReasonOption,
        by: RequesterOption = None,
        role: RequesterRoleOption = "data_scientist",
        override: OverrideOption = False,
        token_file: TokenFileOption = None,
        model_name: ModelOption = PERSON_MODEL,
        policy_file: PolicyOption = None,
        home: HomeOption = None,
    ) -> None:
        """Move `champion` to VERSION if its audit passes the gate (or an authenticated
        auditor overrides, with a written reason)."""
        from fairness.ledger import open_ledger
        from fairness.promotion import promote, record_refused_override

        home, uri = _edges()
        ledger = open_ledger()
        approver = approve(
            "promote", override=override, token_file=token_file, authenticator=authenticator,
            by=by, on_refused=lambda refused: record_refused_override(
                ledger, version, refused, claimed=by, reason=reason
            ),
        )  # fmt: skip
        with _progress(f"promotion of v{version}") as progress:
            outcome = promote(
                version, load_policy(policy_file), ledger, home=home, by=by or "", reason=reason,
                role=role, override=override, uri=uri, model_name=model_name, approver=approver,
                progress=progress,
            )  # fmt: skip
        print_outcome(
            outcome, approver, subject=f"v{version}", version=version, model_name=model_name
        )

    @app.command("rollback")
    def rollback_cmd(
        by: Annotated[str, typer.Option("--by", help="who rolls back")],
        reason: ReasonOption,
        role: RoleOption = "data_scientist",
        model_name: ModelOption = PERSON_MODEL,
        home: HomeOption = None,
    ) -> None:
        """Move `champion` back to the previous champion named by the ledger."""
        from fairness.ledger import open_ledger
        from fairness.promotion import rollback

        _, uri = _edges()
        current, previous = rollback(
            open_ledger(), by=by, reason=reason, role=role, uri=uri, model_name=model_name
        )
        Console().print(f"champion: v{current} -> v{previous} (recorded in the ledger)")
