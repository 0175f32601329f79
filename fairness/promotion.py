"""`riskcast audit | promote | rollback`: the gate's edges (MLflow aliases, reports, ledger).

The decision itself is pure (`fairness.gate.decide`); this module audits the candidate (and
the champion, reusing its stored report when the policy version matches), writes the report
with the decision, moves the ``champion`` alias only on pass (or on an auditor's override) and
records every step in the ledger. `champion_history` (pure) reads the ledger's promotions,
overrides and rollbacks to find the previous champion for a rollback; `champion_basis` (pure)
finds the entry that made a version champion (the auditors' page shows a banner when it was an
override).

Every entry about an audit records the report's one hash, the sha256 of its kept JSON
(`fairness.report_store`), and, as its last reason, where that JSON is kept, so that
`riskcast ledger verify` can check it.

**Overrides are authenticated** (`authorize_override`): the override must be made by a user who
holds the ``auditor`` role in the service's users table, proven by that user's token; the
entries record that user's name and role from the table, never from ``--by`` / ``--role``.
A refused override (no token, an unknown or revoked token, a user without the auditor role) is
itself a ledger entry (kind ``refusal``, decision ``override refused``), so that attempts are
visible to auditors, and raises `OverrideRefused` with one line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fairness.audit import VersionAudit, run_audit
from fairness.gate import decide
from fairness.ledger import Ledger, LedgerEntry, ledger_version, split_version
from fairness.policy import FairnessPolicy
from fairness.report import WrittenReport
from fairness.report_store import latest_report, report_reason, version_dir
from fairness.results import AuditResult, GateDecision
from riskcast.auth import TOKEN_ENV, Authenticator, Principal
from riskcast.errors import InputError, NotFoundError
from riskcast.names import CHAMPION, PERSON_MODEL

AUDITOR = "auditor"
MODEL_NAME = PERSON_MODEL  # the name this module used before `riskcast.names`


@dataclass(frozen=True)
class PromotionOutcome:
    version: str
    decision: GateDecision
    promoted: bool
    overridden: bool
    report: Path  # the kept report's HTML
    entries: list[LedgerEntry]
    written: WrittenReport  # the kept report: paths, audit id, the JSON's sha256 (its hash)


class OverrideRefused(InputError):
    """An override not made by an authenticated auditor (HTTP 403; CLI exit 2)."""

    http_status = 403


Progress = Callable[[str], None]


def check_override(role: str, reason: str) -> None:
    """An override needs the auditor role and a written reason."""
    if role != AUDITOR:
        raise InputError(f"an override needs the role {AUDITOR!r} (given: {role!r})")
    if len(reason.strip()) < 10:
        raise InputError("an override needs a written reason (--reason, at least 10 characters)")


def authorize_override(
    token: str | None, authenticator: Authenticator | None, *, claimed: str | None = None
) -> Principal:
    """The auditor the token proves, or `OverrideRefused` saying why not (one line): no token,
    no users table to check it against, a token that is unknown or revoked, a user without the
    auditor role, or ``claimed`` (``--by``) naming someone else than the token's user."""
    proof = f"set {TOKEN_ENV} or pass --token-file with an auditor's token"
    if authenticator is None:
        raise OverrideRefused(
            "an override needs the users table to check the auditor's token; run it through "
            "the `riskcast` command"
        )
    if token is None:
        raise OverrideRefused(f"an override must be made by an auditor proven by a token: {proof}")
    user = authenticator.authenticate(token)
    if user is None:
        raise OverrideRefused(
            "the token is unknown or revoked: an override needs an active auditor's token "
            f"({proof})"
        )
    if str(user.role) != AUDITOR:
        raise OverrideRefused(
            f"user {user.name!r} holds the role {user.role!s}: an override needs the role "
            f"{AUDITOR!r}"
        )
    if claimed is not None and claimed != user.name:
        raise OverrideRefused(
            f"--by {claimed!r} but the token is {user.name!r}'s: an override is recorded under "
            "the token's user (leave out --by)"
        )
    return user


def record_refused_override(
    ledger: Ledger, version: str, refusal: OverrideRefused, *, claimed: str | None, reason: str
) -> LedgerEntry:
    """The ledger entry of a refused override: who claimed to be acting, and why it was
    refused (the claim is what the command was given, not an identity)."""
    return ledger.append(
        "refusal", actor=claimed or "unknown", role="unauthenticated", version=version,
        decision="override refused",
        reasons=[f"override refused: {refusal}", f"reason given: {reason.strip() or '–'}"],
    )  # fmt: skip


def champion_basis(entries: Sequence[LedgerEntry], version: str) -> LedgerEntry | None:
    """The promotion or override entry that made ``version`` the champion most recently (a
    rollback restores a version on the basis it had), or None if the ledger names none."""
    basis: LedgerEntry | None = None
    for e in entries:
        made = e.kind in ("promotion", "override") and e.decision in ("promoted", "overridden")
        if made and e.version == version:
            basis = e
    return basis


def champion_history(entries: Sequence[LedgerEntry], model_name: str = PERSON_MODEL) -> list[str]:
    """The champion versions of ``model_name`` in order, per the ledger: promotions and
    overrides push, rollbacks pop back to the version they name; other models' entries
    (`fairness.ledger.split_version`) are skipped."""
    stack: list[str] = []
    for e in entries:
        model, version = split_version(e.version)
        if model != model_name:
            continue
        if e.kind in ("promotion", "override") and e.decision in ("promoted", "overridden"):
            stack.append(version)
        elif e.kind == "rollback":
            while stack and stack[-1] != version:
                stack.pop()
            if not stack:
                stack.append(version)
    return stack


def current_champion(model_name: str, uri: str) -> str | None:
    from training.tracking import tracking_session

    with tracking_session(uri) as client:
        try:
            return str(client.get_model_version_by_alias(model_name, CHAMPION).version)
        except Exception:  # MLflow raises when the alias is not set
            return None


def set_champion(model_name: str, version: str, uri: str) -> None:
    from training.tracking import tracking_session

    with tracking_session(uri) as client:
        client.set_registered_model_alias(model_name, CHAMPION, version)


def stored_audit(
    home: Path, model_name: str, version: str, policy: FairnessPolicy
) -> AuditResult | None:
    """The audit of a version's stored report (validated into its typed model), if it was made
    under this policy version."""
    folder = latest_report(version_dir(home, model_name, version))
    if folder is None:
        return None
    path = folder / "fairness-report.json"
    content = json.loads(path.read_text(encoding="utf-8"))
    if content.get("policy_version") != policy.policy_version:
        return None
    return AuditResult.model_validate(content["audit"])


def requester(
    by: str, role: str, reason: str, *, override: bool, approver: Principal | None
) -> tuple[str, str]:
    """Who a promotion's entries name, ``(by, role)``: on an override the authenticated
    auditor ``approver`` (never ``--by`` / ``--role``), who must give a written reason; a
    promotion without a reason is refused."""
    if override:
        if approver is None or str(approver.role) != AUDITOR:
            raise OverrideRefused(
                f"an override must be made by an authenticated {AUDITOR} (authorize_override)"
            )
        by, role = approver.name, str(approver.role)
        check_override(role, reason)
    if not reason.strip():
        raise InputError("--reason is required")
    return by, role


def audit_and_record(
    version: str, policy: FairnessPolicy, ledger: Ledger, *, home: Path, by: str, role: str,
    uri: str, model_name: str = PERSON_MODEL, mitigation: bool = False,
    progress: Progress | None = None,
) -> VersionAudit:  # fmt: skip
    """`riskcast audit VERSION`: the report (with the policy checks) and an ``audit`` entry."""
    result = run_audit(
        version, policy, home=home, model_name=model_name, uri=uri,
        decide_fn=lambda audit: decide(audit, None, policy), mitigation=mitigation,
        progress=progress,
    )  # fmt: skip
    decision = _decided(result)
    ledger.append(
        "audit", actor=by, role=role, version=result.version, decision=decision.outcome,
        reasons=[*decision.reasons, _kept_at(result, home)],
        report_sha256=result.written.sha256, data_digests=result.data_digests,
    )  # fmt: skip
    return result


def _kept_at(result: VersionAudit, home: Path) -> str:
    """The reason naming where the audit's report is kept (checked by `ledger verify`)."""
    return report_reason(result.written.json_path, home)


def _decided(result: VersionAudit) -> GateDecision:
    if result.decision is None:  # run_audit was given a decide_fn: never
        raise RuntimeError(f"the audit of v{result.version} carries no gate decision")
    return result.decision


def promote(
    version: str, policy: FairnessPolicy, ledger: Ledger, *, home: Path, by: str, reason: str,
    role: str, override: bool, uri: str, model_name: str = PERSON_MODEL,
    approver: Principal | None = None, progress: Progress | None = None,
) -> PromotionOutcome:  # fmt: skip
    """Audit, compare with the champion, move the alias only on pass (or an auditor's
    override); every decision is a ledger entry.

    An override needs ``approver``, the auditor `authorize_override` authenticated: the
    entries then name that user and role (``by`` and ``role`` are ignored)."""
    by, role = requester(by, role, reason, override=override, approver=approver)
    champion = current_champion(model_name, uri)
    if champion == version:
        raise InputError(f"{model_name} v{version} is already the champion")
    champion_audit = None
    if champion is not None:
        champion_audit = stored_audit(home, model_name, champion, policy)
        if champion_audit is None:
            champion_audit = run_audit(
                champion, policy, home=home, model_name=model_name, uri=uri,
                decide_fn=lambda a: decide(a, None, policy), progress=progress,
            ).audit  # fmt: skip

    def decide_fn(audit: AuditResult) -> GateDecision:
        decided = decide(audit, champion_audit, policy)
        return GateDecision(outcome=decided.outcome, checks=decided.checks, champion=champion)

    result = run_audit(
        version, policy, home=home, model_name=model_name, uri=uri, decide_fn=decide_fn,
        progress=progress,
    )  # fmt: skip
    decision = _decided(result)
    common: dict[str, Any] = {
        "actor": by, "role": role, "version": result.version,
        "report_sha256": result.written.sha256, "data_digests": result.data_digests,
    }  # fmt: skip
    kept_at = _kept_at(result, home)
    entries = [
        ledger.append(
            "audit", decision=decision.outcome, reasons=[*decision.reasons, kept_at], **common
        )
    ]
    if not result.population:
        refusal = (
            f"{model_name} v{result.version} declares no population of validity (trained before "
            "scopes existed): the service would refuse to serve it; train a new version"
        )
        entries.append(
            ledger.append("refusal", decision="refused", reasons=[refusal, kept_at], **common)
        )
        raise InputError(refusal)
    why = [
        f"reason: {reason}",
        f"previous champion: {champion or 'none'}",
        f"population of validity (audited and served): {result.population}",
    ]
    return settle(
        ledger, decision, override=override, why=why, evidence=[*decision.reasons, kept_at],
        model_name=model_name, version=result.version, uri=uri, written=result.written,
        entries=entries, common=common,
    )  # fmt: skip


def settle(
    ledger: Ledger, decision: GateDecision, *, override: bool, why: list[str],
    evidence: list[str], model_name: str, version: str, uri: str, written: WrittenReport,
    entries: list[LedgerEntry], common: dict[str, Any],
) -> PromotionOutcome:  # fmt: skip
    """The end of a promotion, person or place: move ``champion`` to ``version`` when the gate
    passed (a ``promotion``) or an override was approved (an ``override``, naming the outcome
    it overrode), else leave it (a ``refusal``); the entry's reasons are ``why`` and
    ``evidence``, ``common`` its other fields; ``entries`` so far plus this one are returned."""
    if decision.passed or override:
        set_champion(model_name, version, uri)
        kind, outcome = ("promotion", "promoted") if decision.passed else ("override", "overridden")
        overridden = [] if decision.passed else [f"gate outcome overridden: {decision.outcome}"]
        entries.append(
            ledger.append(kind, decision=outcome, reasons=[*why, *overridden, *evidence], **common)
        )
    else:
        entries.append(
            ledger.append("refusal", decision=decision.outcome, reasons=[*why, *evidence], **common)
        )
    moved = decision.passed or override
    return PromotionOutcome(
        version, decision, moved, moved and not decision.passed, written.html_path, entries,
        written,
    )  # fmt: skip


def rollback(
    ledger: Ledger, *, by: str, reason: str, role: str, uri: str, model_name: str = PERSON_MODEL
) -> tuple[str, str]:
    """Move ``champion`` back to the previous champion per the ledger: (from, to)."""
    if not reason.strip():
        raise InputError("--reason is required")
    history = champion_history(ledger.entries(), model_name)
    if len(history) < 2:
        raise NotFoundError("the ledger names no previous champion to roll back to")
    current, previous = history[-1], history[-2]
    set_champion(model_name, previous, uri)
    ledger.append(
        "rollback", actor=by, role=role, version=ledger_version(model_name, previous),
        decision="rolled back",
        reasons=[f"reason: {reason}", f"champion v{current} withdrawn, v{previous} restored"],
    )  # fmt: skip
    return current, previous
