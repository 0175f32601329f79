"""`riskcast places audit|promote`: the fairness stage's place commands.

``audit`` audits the ``challenger`` of ``street-crime`` by default (``--version N`` another):
its test predictions from MLflow, persons and appeals from the store; prints the gate's
comparison with the champion, exposure by district and the feedback-loop check; keeps the
report and records an ``audit`` entry in the ledger. ``promote`` runs the gate and moves the
``champion`` alias on pass; an override (``--override``) must be made by an authenticated
auditor exactly as ``riskcast promote --override`` (the token from ``RISKCAST_TOKEN`` or
``--token-file``, checked against the users table the command root hands to `register`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from fairness import commands as cmd
from fairness.policy import load_policy
from riskcast.auth import AuthenticatorFactory
from riskcast.names import PLACES_MODEL

if TYPE_CHECKING:
    from fairness.places.results import PlacesAudit
    from fairness.results import Estimate

VERSION_HELP = "registered version of street-crime (default: the challenger)"
VersionOption = Annotated[str | None, typer.Option("--version", help=VERSION_HELP)]


def _est(e: Estimate, digits: int = 2) -> str:
    if e.value is None:
        return "–"
    if e.low is None or e.high is None:
        return f"{e.value:.{digits}f}"
    return f"{e.value:.{digits}f} [{e.low:.{digits}f}, {e.high:.{digits}f}]"


def _num(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def print_audit(console: Console, audit: PlacesAudit) -> None:
    """The measures, the comparison, exposure and the feedback-loop check as tables."""
    pai = f"PAI@{audit.area_share * 100:g} %"
    t = Table(
        title=f"{audit.model_name} v{audit.version}: {audit.weeks} weeks, {audit.cells} cells"
    )
    for name in ("score", pai, "deviance"):
        t.add_column(name)
    for m in audit.measures:
        t.add_row(m.score, _num(m.pai, 2), _num(m.deviance, 4))
    console.print(t)
    if audit.comparison:
        t = Table(title="challenger / champion (paired bootstrap over weeks)")
        for column in ("measure", "weeks", "challenger", "champion", "ratio [interval]"):
            t.add_column(column)
        for c in audit.comparison:
            t.add_row(
                c.measure, str(c.weeks), _num(c.challenger), _num(c.champion), _est(c.ratio, 3)
            )
        console.print(t)
    t = Table(title="exposure by district (shares)")
    for name in ("district", "flagged area", "incidents", "residents", "area/incidents", "status"):
        t.add_column(name)
    for r in audit.exposure:
        style = "red" if r.status in ("flagged", "no incidents") else None
        t.add_row(
            f"{r.region}/{r.district}", _num(r.flagged_area_share), _num(r.incident_share),
            _num(r.resident_share), _est(r.ratio), r.status, style=style,
        )  # fmt: skip
    console.print(t)
    t = Table(title="feedback loop: registrations vs appeals, before/after first flagged")
    for name in (
        "district",
        "first flagged",
        "registrations ×",
        "appeals ×",
        "divergence",
        "status",
    ):
        t.add_column(name)
    for f in audit.feedback:
        t.add_row(
            f"{f.region}/{f.district}", str(f.onset or "never"), _est(f.registration_rise),
            _est(f.appeal_rise), _est(f.divergence), f.status,
            style="red" if f.status == "flagged" else None,
        )  # fmt: skip
    console.print(t)
    console.print(
        "the feedback-loop check cannot separate detection from crime and makes no causal "
        "claim (see the report)",
        highlight=False,
    )


def register(places: typer.Typer, *, authenticator: AuthenticatorFactory | None = None) -> None:
    """Adds `audit` and `promote` to the ``places`` group (composed in `serving.cli`);
    ``authenticator`` opens the users that prove an override (without it every override is
    refused)."""

    @places.command("audit")
    def audit_cmd(
        version: VersionOption = None,
        by: cmd.ByOption = "riskcast",
        role: cmd.RoleOption = "data_scientist",
        policy_file: cmd.PolicyOption = None,
        home: cmd.HomeOption = None,
    ) -> None:
        """Audit a street-crime version: the gate against the champion (PAI@5 %, deviance),
        exposure by district, the feedback-loop check; keep the report, record it in the
        ledger."""
        from fairness.ledger import open_ledger
        from fairness.places.audit import resolve_version
        from fairness.places.promotion import audit_and_record

        home, uri = cmd.edges()
        chosen = resolve_version(PLACES_MODEL, version, uri)
        with cmd.progress_line(f"places audit of v{chosen}") as progress:
            run = audit_and_record(
                chosen, load_policy(policy_file), open_ledger(), home=home, by=by, role=role,
                uri=uri, progress=progress,
            )  # fmt: skip
        console = Console()
        print_audit(console, run.audit)
        cmd.print_gate(console, run.audit.decision)
        cmd.print_report(console, run.written)

    @places.command("promote")
    def promote_cmd(
        reason: cmd.ReasonOption,
        version: VersionOption = None,
        by: cmd.RequesterOption = None,
        role: cmd.RequesterRoleOption = "data_scientist",
        override: cmd.OverrideOption = False,
        token_file: cmd.TokenFileOption = None,
        policy_file: cmd.PolicyOption = None,
        home: cmd.HomeOption = None,
    ) -> None:
        """Move street-crime's `champion` to the challenger (or --version) if it passes the
        places gate, or an authenticated auditor overrides with a written reason."""
        from fairness.ledger import ledger_version, open_ledger
        from fairness.places.audit import resolve_version
        from fairness.places.promotion import promote
        from fairness.promotion import record_refused_override

        home, uri = cmd.edges()
        ledger = open_ledger()
        chosen = resolve_version(PLACES_MODEL, version, uri)
        approver = cmd.approve(
            "places promote", override=override, token_file=token_file,
            authenticator=authenticator, by=by,
            on_refused=lambda refused: record_refused_override(
                ledger, ledger_version(PLACES_MODEL, chosen), refused, claimed=by, reason=reason
            ),
        )  # fmt: skip
        with cmd.progress_line(f"places promotion of v{chosen}") as progress:
            outcome = promote(
                chosen, load_policy(policy_file), ledger, home=home, by=by or "", reason=reason,
                role=role, override=override, uri=uri, approver=approver, progress=progress,
            )  # fmt: skip
        cmd.print_outcome(
            outcome, approver, subject=f"{PLACES_MODEL} v{chosen}", version=chosen,
            model_name=PLACES_MODEL,
        )  # fmt: skip
