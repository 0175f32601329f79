"""`riskcast audit | promote | rollback`: the gate's edges (MLflow aliases, reports, ledger).

The decision itself is pure (`fairness.gate.decide`); this module audits the candidate (and
the champion, reusing its stored report when the policy version matches), writes the report
with the decision, moves the ``champion`` alias only on pass (or on an auditor's override) and
records every step in the ledger. `champion_history` (pure) reads the ledger's promotions,
overrides and rollbacks to find the previous champion for a rollback.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fairness.audit import VersionAudit, run_audit
from fairness.gate import GateDecision, decide
from fairness.ledger import Ledger, LedgerEntry
from fairness.policy import MODEL_NAME, FairnessPolicy
from features.errors import InputError, NotFoundError

AUDITOR = "auditor"
CHAMPION = "champion"


@dataclass(frozen=True)
class PromotionOutcome:
    version: str
    decision: GateDecision
    promoted: bool
    overridden: bool
    report: Path
    entries: list[LedgerEntry]


def check_override(role: str, reason: str) -> None:
    """An override needs the auditor role and a written reason."""
    if role != AUDITOR:
        raise InputError(f"an override needs the role {AUDITOR!r} (given: {role!r})")
    if len(reason.strip()) < 10:
        raise InputError("an override needs a written reason (--reason, at least 10 characters)")


def champion_history(entries: Sequence[LedgerEntry]) -> list[str]:
    """The champion versions in order, per the ledger: promotions and overrides push, rollbacks
    pop back to the version they name."""
    stack: list[str] = []
    for e in entries:
        if e.kind in ("promotion", "override") and e.decision in ("promoted", "overridden"):
            stack.append(e.version)
        elif e.kind == "rollback":
            while stack and stack[-1] != e.version:
                stack.pop()
            if not stack:
                stack.append(e.version)
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


def stored_audit(home: Path, model_name: str, version: str, policy: FairnessPolicy) -> Any:
    """The audit of a version's stored report, if it was made under this policy version."""
    path = home / "reports" / f"{model_name}-v{version}" / "fairness-report.json"
    if not path.is_file():
        return None
    content = json.loads(path.read_text(encoding="utf-8"))
    return content["audit"] if content.get("policy_version") == policy.policy_version else None


def audit_and_record(
    version: str, policy: FairnessPolicy, ledger: Ledger, *, home: Path, by: str, role: str,
    uri: str, model_name: str = MODEL_NAME, mitigation: bool = False,
) -> VersionAudit:  # fmt: skip
    """`riskcast audit VERSION`: the report (with the policy checks) and an ``audit`` entry."""
    result = run_audit(
        version, policy, home=home, model_name=model_name, uri=uri,
        decide_fn=lambda audit: decide(audit, None, policy).as_dict(), mitigation=mitigation,
    )  # fmt: skip
    decision = result.content["decision"]
    ledger.append(
        "audit", actor=by, role=role, version=result.version, decision=decision["outcome"],
        reasons=list(decision["reasons"]), report_sha256=result.written.html_sha256,
        data_digests=result.data_digests,
    )  # fmt: skip
    return result


def promote(
    version: str, policy: FairnessPolicy, ledger: Ledger, *, home: Path, by: str, reason: str,
    role: str, override: bool, uri: str, model_name: str = MODEL_NAME,
) -> PromotionOutcome:  # fmt: skip
    """Audit, compare with the champion, move the alias only on pass (or an auditor's
    override); every decision is a ledger entry."""
    if override:
        check_override(role, reason)
    if not reason.strip():
        raise InputError("--reason is required")
    champion = current_champion(model_name, uri)
    if champion == version:
        raise InputError(f"{model_name} v{version} is already the champion")
    champion_audit = None
    if champion is not None:
        champion_audit = stored_audit(home, model_name, champion, policy)
        if champion_audit is None:
            champion_audit = run_audit(
                champion, policy, home=home, model_name=model_name, uri=uri,
                decide_fn=lambda a: decide(a, None, policy).as_dict(),
            ).audit  # fmt: skip
    decisions: list[GateDecision] = []

    def decide_fn(audit: dict[str, Any]) -> dict[str, Any]:
        decisions.append(decide(audit, champion_audit, policy))
        out = decisions[-1].as_dict()
        out["champion"] = champion
        return out

    result = run_audit(
        version, policy, home=home, model_name=model_name, uri=uri, decide_fn=decide_fn
    )
    decision = decisions[-1]
    common: dict[str, Any] = {
        "actor": by, "role": role, "version": result.version,
        "report_sha256": result.written.html_sha256, "data_digests": result.data_digests,
    }  # fmt: skip
    entries = [
        ledger.append("audit", decision=decision.outcome, reasons=decision.reasons, **common)
    ]
    why = [f"reason: {reason}", f"previous champion: {champion or 'none'}"]
    if decision.passed:
        set_champion(model_name, result.version, uri)
        entries.append(
            ledger.append(
                "promotion", decision="promoted", reasons=why + decision.reasons, **common
            )
        )
        return PromotionOutcome(
            result.version, decision, True, False, result.written.html_path, entries
        )
    if override:
        set_champion(model_name, result.version, uri)
        entries.append(
            ledger.append(
                "override", decision="overridden",
                reasons=[*why, f"gate outcome overridden: {decision.outcome}", *decision.reasons],
                **common,
            )
        )  # fmt: skip
        return PromotionOutcome(
            result.version, decision, True, True, result.written.html_path, entries
        )
    entries.append(
        ledger.append(
            "refusal", decision=decision.outcome, reasons=why + decision.reasons, **common
        )
    )
    return PromotionOutcome(
        result.version, decision, False, False, result.written.html_path, entries
    )


def rollback(
    ledger: Ledger, *, by: str, reason: str, role: str, uri: str, model_name: str = MODEL_NAME
) -> tuple[str, str]:
    """Move ``champion`` back to the previous champion per the ledger: (from, to)."""
    if not reason.strip():
        raise InputError("--reason is required")
    history = champion_history(ledger.entries())
    if len(history) < 2:
        raise NotFoundError("the ledger names no previous champion to roll back to")
    current, previous = history[-1], history[-2]
    set_champion(model_name, previous, uri)
    ledger.append(
        "rollback", actor=by, role=role, version=previous, decision="rolled back",
        reasons=[f"reason: {reason}", f"champion v{current} withdrawn, v{previous} restored"],
    )  # fmt: skip
    return current, previous
