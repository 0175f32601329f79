"""`riskcast audit-table`, `audit`, `promote`, `rollback`: the fairness stage's commands.

`audit` and `promote` take seconds (the test snapshot is rebuilt, bootstrapped and plotted):
they show each phase on stderr, as the other long commands do. A report's one hash is the
sha256 of its JSON (`fairness.report_store`); the commands print it as the ledger records it.

An override (`promote --override`) is authenticated through the `riskcast.auth.Authenticator`
the command root passes to `register` (the service's users table): this stage never imports
the service.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from fairness.policy import load_policy
from fairness.results import Estimate
from riskcast.auth import TOKEN_ENV, AuthenticatorFactory
from riskcast.names import PERSON_MODEL
from riskcast.settings import HOME_HELP, use_home

if TYPE_CHECKING:
    from fairness.report import WrittenReport


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
        policy_file: Annotated[
            Path | None, typer.Option("--policy", help="fairness policy (default: configs)")
        ] = None,
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


def _edges() -> tuple[Path, str]:
    from riskcast.settings import get_settings
    from training.tracking import tracking_uri

    home = get_settings().home
    return home, tracking_uri(home)


@contextmanager
def _progress(what: str) -> Iterator[Callable[[str], None]]:
    """A status line on stderr that each phase updates; the time taken when done."""
    err = Console(stderr=True)
    started = perf_counter()
    with err.status(f"{what} ...") as status:
        yield lambda message: status.update(f"{what}: {message} ...")
    err.print(f"{what}: done in {perf_counter() - started:.1f} s", highlight=False)


def _print_report(console: Console, written: WrittenReport) -> None:
    """Where the report is kept and its one hash (the JSON's, as the ledger records it)."""
    for line in (
        f"report:   {written.html_path}",
        f"json:     {written.json_path}",
        f"audit id: {written.audit_id or '–'}",
        f"sha256:   {written.sha256} (of the JSON; recorded in the ledger)",
    ):  # never wrapped: paths and hashes are copied from here
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def register_gate(app: typer.Typer, *, authenticator: AuthenticatorFactory | None = None) -> None:
    """`riskcast audit VERSION`, `riskcast promote VERSION`, `riskcast rollback`.

    Their implementations (MLflow, fairlearn, scikit-learn) are imported when a command runs,
    so `riskcast --help` and unrelated commands start fast."""

    @app.command("audit")
    def audit_cmd(
        version: Annotated[str, typer.Argument(help="registered version number")],
        by: Annotated[str, typer.Option("--by", help="who runs the audit")] = "riskcast",
        role: Annotated[str, typer.Option("--role", help="the role of --by")] = "data_scientist",
        model_name: Annotated[str, typer.Option("--model", help="registered model name")] = (
            PERSON_MODEL
        ),
        policy_file: Annotated[
            Path | None, typer.Option("--policy", help="fairness policy (default: configs)")
        ] = None,
        mitigation: Annotated[
            bool, typer.Option("--mitigation", help="what-if: group thresholds (off by default)")
        ] = False,
        home: Annotated[
            Path | None, typer.Option("--home", help=HOME_HELP, callback=use_home)
        ] = None,
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
        decision = result.decision
        console.print(f"policy checks: {decision.outcome if decision else 'not evaluated'}")
        for reason in decision.reasons if decision else []:
            if not reason.startswith("PASS"):
                console.print(f"  {reason}", highlight=False)
        _print_report(console, result.written)

    @app.command("promote")
    def promote_cmd(
        version: Annotated[str, typer.Argument(help="registered version number")],
        reason: Annotated[str, typer.Option("--reason", help="why (recorded in the ledger)")],
        by: Annotated[
            str | None,
            typer.Option(
                "--by",
                help="who asks for the promotion (required without --override; an override is "
                "recorded under the token's user)",
            ),
        ] = None,
        role: Annotated[
            str, typer.Option("--role", help="the role of --by (an override's is the token's)")
        ] = "data_scientist",
        override: Annotated[
            bool,
            typer.Option(
                "--override",
                help=f"move champion despite the gate: an auditor's token ({TOKEN_ENV} or "
                "--token-file) is required",
            ),
        ] = False,
        token_file: Annotated[
            Path | None,
            typer.Option("--token-file", help=f"a file holding the token (else {TOKEN_ENV})"),
        ] = None,
        model_name: Annotated[str, typer.Option("--model", help="registered model name")] = (
            PERSON_MODEL
        ),
        policy_file: Annotated[
            Path | None, typer.Option("--policy", help="fairness policy (default: configs)")
        ] = None,
        home: Annotated[
            Path | None, typer.Option("--home", help=HOME_HELP, callback=use_home)
        ] = None,
    ) -> None:
        """Move `champion` to VERSION if its audit passes the gate (or an authenticated
        auditor overrides, with a written reason)."""
        from fairness.ledger import open_ledger
        from fairness.promotion import (
            OverrideRefused,
            authorize_override,
            promote,
            record_refused_override,
        )
        from riskcast.auth import read_token
        from riskcast.errors import InputError

        home, uri = _edges()
        ledger = open_ledger()
        approver = None
        if override:
            try:
                approver = authorize_override(
                    read_token(token_file),
                    authenticator() if authenticator is not None else None,
                    claimed=by,
                )
            except OverrideRefused as refused:
                record_refused_override(ledger, version, refused, claimed=by, reason=reason)
                raise
        elif by is None:
            raise InputError("promote: --by NAME is required (who asks for the promotion)")
        with _progress(f"promotion of v{version}") as progress:
            outcome = promote(
                version, load_policy(policy_file), ledger, home=home, by=by or "", reason=reason,
                role=role, override=override, uri=uri, model_name=model_name, approver=approver,
                progress=progress,
            )  # fmt: skip
        console = Console()
        console.print(f"gate: {outcome.decision.outcome}")
        for r in outcome.decision.reasons:
            if not r.startswith("PASS"):
                console.print(f"  {r}", highlight=False)
        _print_report(console, outcome.written)
        if outcome.overridden and approver is not None:
            console.print(
                f"OVERRIDE by {approver.name} ({approver.role}, authenticated): v{version} is "
                "champion; recorded",
                highlight=False,
            )
        elif outcome.promoted:
            console.print(f"v{version} is now champion")
        else:
            console.print(f"refused: v{version} stays {model_name}@challenger")
            raise typer.Exit(1)

    @app.command("rollback")
    def rollback_cmd(
        by: Annotated[str, typer.Option("--by", help="who rolls back")],
        reason: Annotated[str, typer.Option("--reason", help="why (recorded in the ledger)")],
        role: Annotated[str, typer.Option("--role", help="the role of --by")] = "data_scientist",
        model_name: Annotated[str, typer.Option("--model", help="registered model name")] = (
            PERSON_MODEL
        ),
        home: Annotated[
            Path | None, typer.Option("--home", help=HOME_HELP, callback=use_home)
        ] = None,
    ) -> None:
        """Move `champion` back to the previous champion named by the ledger."""
        from fairness.ledger import open_ledger
        from fairness.promotion import rollback

        _, uri = _edges()
        current, previous = rollback(
            open_ledger(), by=by, reason=reason, role=role, uri=uri, model_name=model_name
        )
        Console().print(f"champion: v{current} -> v{previous} (recorded in the ledger)")
