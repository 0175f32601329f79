"""What the person and the place commands of the fairness stage share (`fairness.cli`,
`fairness.places.cli`): the options of `audit` and `promote`, the progress line, the printed
report and gate, the authenticated override and the printed outcome of a promotion.

Written once so that an override is checked, refused and recorded the same way whichever model
it is for, and both commands read the same to an auditor. The heavy parts (the ledger, MLflow)
are imported when a command runs, so ``--help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from riskcast.auth import TOKEN_ENV, AuthenticatorFactory
from riskcast.settings import HOME_HELP, use_home

if TYPE_CHECKING:
    from fairness.promotion import OverrideRefused, PromotionOutcome
    from fairness.report import WrittenReport
    from fairness.results import GateDecision
    from riskcast.auth import Principal

ByOption = Annotated[str, typer.Option("--by", help="who runs the audit")]
RoleOption = Annotated[str, typer.Option("--role", help="the role of --by")]
PolicyOption = Annotated[
    Path | None, typer.Option("--policy", help="fairness policy (default: configs)")
]
HomeOption = Annotated[Path | None, typer.Option("--home", help=HOME_HELP, callback=use_home)]
ReasonOption = Annotated[str, typer.Option("--reason", help="why (recorded in the ledger)")]
RequesterOption = Annotated[
    str | None,
    typer.Option(
        "--by",
        help="who asks for the promotion (required without --override; an override is "
        "recorded under the token's user)",
    ),
]
RequesterRoleOption = Annotated[
    str, typer.Option("--role", help="the role of --by (an override's is the token's)")
]
OverrideOption = Annotated[
    bool,
    typer.Option(
        "--override",
        help=f"move champion despite the gate: an auditor's token ({TOKEN_ENV} or "
        "--token-file) is required",
    ),
]
TokenFileOption = Annotated[
    Path | None,
    typer.Option("--token-file", help=f"a file holding the token (else {TOKEN_ENV})"),
]


def edges() -> tuple[Path, str]:
    """The home folder and the MLflow tracking URI the commands read and write."""
    from riskcast.settings import get_settings
    from training.tracking import tracking_uri

    home = get_settings().home
    return home, tracking_uri(home)


@contextmanager
def progress_line(what: str) -> Iterator[Callable[[str], None]]:
    """A status line on stderr that each phase updates; the time taken when done."""
    err = Console(stderr=True)
    started = perf_counter()
    with err.status(f"{what} ...") as status:
        yield lambda message: status.update(f"{what}: {message} ...")
    err.print(f"{what}: done in {perf_counter() - started:.1f} s", highlight=False)


def print_report(console: Console, written: WrittenReport) -> None:
    """Where the report is kept and its one hash (the JSON's, as the ledger records it)."""
    for line in (
        f"report:   {written.html_path}",
        f"json:     {written.json_path}",
        f"audit id: {written.audit_id or '–'}",
        f"sha256:   {written.sha256} (of the JSON; recorded in the ledger)",
    ):  # never wrapped: paths and hashes are copied from here
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def print_gate(console: Console, decision: GateDecision | None, label: str = "gate") -> None:
    """The gate's outcome and the reasons that did not pass (the passing ones are in the
    report)."""
    console.print(f"{label}: {decision.outcome if decision else 'not evaluated'}")
    for reason in decision.reasons if decision else []:
        if not reason.startswith("PASS"):
            console.print(f"  {reason}", highlight=False)


def approve(
    command: str,
    *,
    override: bool,
    token_file: Path | None,
    authenticator: AuthenticatorFactory | None,
    by: str | None,
    on_refused: Callable[[OverrideRefused], object],
) -> Principal | None:
    """The auditor an override's token proves (``None`` without ``--override``).

    A refused override is handed to ``on_refused`` (which records it in the ledger) and raised
    again; a promotion without an override must name who asks for it (``--by``)."""
    from fairness.promotion import OverrideRefused, authorize_override
    from riskcast.auth import read_token
    from riskcast.errors import InputError

    if override:
        try:
            return authorize_override(
                read_token(token_file),
                authenticator() if authenticator is not None else None,
                claimed=by,
            )
        except OverrideRefused as refused:
            on_refused(refused)
            raise
    if by is None:
        raise InputError(f"{command}: --by NAME is required (who asks for the promotion)")
    return None


def print_outcome(
    outcome: PromotionOutcome,
    approver: Principal | None,
    *,
    subject: str,
    version: str,
    model_name: str,
) -> None:
    """The gate, the report and what became of ``subject`` (``v3``, ``street-crime v3``);
    exit 1 when the promotion was refused."""
    console = Console()
    print_gate(console, outcome.decision)
    print_report(console, outcome.written)
    if outcome.overridden and approver is not None:
        console.print(
            f"OVERRIDE by {approver.name} ({approver.role}, authenticated): {subject} is "
            "champion; recorded",
            highlight=False,
        )
    elif outcome.promoted:
        console.print(f"{subject} is now champion", highlight=False)
    else:
        console.print(f"refused: v{version} stays {model_name}@challenger", highlight=False)
        raise typer.Exit(1)
