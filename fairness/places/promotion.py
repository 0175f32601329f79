"""`riskcast places audit | promote`: the places gate's edges (MLflow aliases, reports, ledger).

The person path's machinery is reused, not copied (`fairness.promotion`): the champion alias is
read by `current_champion` and moved by `settle`, which records the promotion, override or
refusal and returns a `PromotionOutcome`; overrides are authenticated by `authorize_override`
(the command, `fairness.commands.approve`) and checked by `requester`, and a refused override
is recorded by `record_refused_override`. Entries go to the same ledger as the person model's,
with the model name in their version (`fairness.ledger.ledger_version`: ``street-crime@3``),
so the person's rollback and version filters never see them. Every entry about an audit
records the report's hash and, as its last reason, where the report is kept (`riskcast ledger
verify` checks it).

The first version passes when there is no champion (as for persons); an override moves the
alias despite the gate and is recorded as such; a refusal leaves the challenger alias alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fairness.ledger import Ledger, ledger_version
from fairness.places.audit import (
    PlacesAuditRun,
    Progress,
    advisory_reasons,
    run_places_audit,
)
from fairness.policy import FairnessPolicy
from fairness.promotion import (
    PromotionOutcome,
    current_champion,
    requester,
    settle,
)
from fairness.report_store import report_reason
from fairness.results import GateDecision
from riskcast.auth import Principal
from riskcast.errors import InputError
from riskcast.names import PLACES_MODEL


def _decided(run: PlacesAuditRun) -> GateDecision:
    if run.audit.decision is None:  # run_places_audit always decides
        raise RuntimeError(f"the places audit of v{run.version} carries no gate decision")
    return run.audit.decision


def audit_and_record(
    version: str, policy: FairnessPolicy, ledger: Ledger, *, home: Path, by: str, role: str,
    uri: str, model_name: str = PLACES_MODEL, progress: Progress | None = None,
) -> PlacesAuditRun:  # fmt: skip
    """`riskcast places audit`: the report (with the gate's comparison against the current
    champion) and an ``audit`` entry."""
    champion = current_champion(model_name, uri)
    run = run_places_audit(
        version, policy, home=home, uri=uri, model_name=model_name, champion=champion,
        progress=progress,
    )  # fmt: skip
    decision = _decided(run)
    ledger.append(
        "audit", actor=by, role=role, version=ledger_version(model_name, run.version),
        decision=decision.outcome,
        reasons=[*decision.reasons, *advisory_reasons(run.audit),
                 report_reason(run.written.json_path, home)],
        report_sha256=run.written.sha256, data_digests=run.data_digests,
    )  # fmt: skip
    return run


def promote(
    version: str, policy: FairnessPolicy, ledger: Ledger, *, home: Path, by: str, reason: str,
    role: str, override: bool, uri: str, model_name: str = PLACES_MODEL,
    approver: Principal | None = None, progress: Progress | None = None,
) -> PromotionOutcome:  # fmt: skip
    """Audit ``version`` against the champion and move ``champion`` to it only on pass (or an
    authenticated auditor's override, ``approver``); every decision is a ledger entry."""
    by, role = requester(by, role, reason, override=override, approver=approver)
    champion = current_champion(model_name, uri)
    if champion == version:
        raise InputError(f"{model_name} v{version} is already the champion")
    run = run_places_audit(
        version, policy, home=home, uri=uri, model_name=model_name, champion=champion,
        progress=progress,
    )  # fmt: skip
    decision = _decided(run)
    kept_at = report_reason(run.written.json_path, home)
    notes = advisory_reasons(run.audit)
    common: dict[str, Any] = {
        "actor": by, "role": role, "version": ledger_version(model_name, run.version),
        "report_sha256": run.written.sha256, "data_digests": run.data_digests,
    }  # fmt: skip
    entries = [
        ledger.append(
            "audit", decision=decision.outcome, reasons=[*decision.reasons, *notes, kept_at],
            **common,
        )
    ]  # fmt: skip
    why = [f"reason: {reason}", f"model: {model_name}", f"previous champion: {champion or 'none'}"]
    return settle(
        ledger, decision, override=override, why=why,
        evidence=[*decision.reasons, *notes, kept_at], model_name=model_name, version=run.version,
        uri=uri, written=run.written, entries=entries, common=common,
    )  # fmt: skip
