"""An override is made by a user holding the auditor role in the users table, proven by that
user's token; the ledger records that user (name and role from the table), and every refused
override is itself a ledger entry. `riskcast audit` prints the hash the ledger records.

MLflow and the audit itself are replaced by a fake `run_audit` that keeps a real report, so
these tests run in seconds; the model tests run the real audit."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from fairness import cli as fairness_cli
from fairness import promotion
from fairness.audit import VersionAudit
from fairness.ledger import open_ledger
from fairness.policy import load_policy
from fairness.promotion import OverrideRefused, authorize_override, promote
from fairness.report import keep_report, report_content
from fairness.report_store import kept_reports, report_problems, version_dir
from fairness.results import GateCheck, GateDecision
from fairness.tableaudit import audit_frame
from riskcast.errors import InputError
from riskcast.names import PERSON_MODEL
from riskcast.settings import get_settings
from serving.cli import build_app

REASON = "refusal reviewed by hand: groups too small to judge"


# --------------------------------------------------------------------------- pure checks
@dataclass(frozen=True)
class _User:
    name: str
    role: str


class _Users:
    def __init__(self, **tokens: _User) -> None:
        self.tokens = tokens

    def authenticate(self, token: str) -> _User | None:
        return self.tokens.get(token)


def test_authorize_override_refuses_all_but_an_authenticated_auditor() -> None:
    users = _Users(a=_User("cy", "auditor"), o=_User("olga", "officer"))
    assert authorize_override("a", users) == _User("cy", "auditor")
    assert authorize_override("a", users, claimed="cy") == _User("cy", "auditor")
    refusals = {
        "no token": (None, users, None, "RISKCAST_TOKEN"),
        "no users": ("a", None, None, "users table"),
        "unknown": ("zzz", users, None, "unknown or revoked"),
        "officer": ("o", users, None, "holds the role officer"),
        "someone else": ("a", users, "bo", "--by 'bo' but the token is 'cy'"),
    }
    for name, (token, store, claimed, message) in refusals.items():
        with pytest.raises(OverrideRefused, match=re.escape(message)):
            authorize_override(token, store, claimed=claimed)
        assert name


def test_promote_refuses_an_override_without_an_authenticated_auditor(tmp_path: Path) -> None:
    # promote refuses before touching the ledger (None here) or MLflow
    for approver in (None, _User("olga", "officer")):
        with pytest.raises(OverrideRefused, match="authenticated auditor"):
            promote(
                "1", load_policy(), None,  # type: ignore[arg-type]
                home=tmp_path, by="cy", reason=REASON, role="auditor", override=True,
                uri="sqlite://", approver=approver,
            )  # fmt: skip


# --------------------------------------------------------------------------- the commands
@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    monkeypatch.setenv("RISKCAST_HOME", str(home))
    for name in ("RISKCAST_DATABASE_URL", "MLFLOW_TRACKING_URI", "RISKCAST_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


def _fake_audit(n: int = 600) -> Any:
    rng = np.random.default_rng(1)
    p = rng.beta(2, 5, n)
    frame = pl.DataFrame(
        {
            "group": np.where(rng.random(n) < 0.5, "A", "B"),
            "y": (rng.random(n) < p).astype(int),
            "score": p,
        }
    )
    return audit_frame(
        frame, label="y", score="score", protected=["group"], threshold=0.35,
        references={"group": "A"}, min_group_size=50, n_boot=20,
    )  # fmt: skip


@pytest.fixture
def fake_gate(home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """`run_audit` keeps a real report with a failing decision; MLflow aliases are a dict."""
    audit = _fake_audit()
    aliases: dict[str, Any] = {"champion": None}

    def run_audit(version: str, policy: Any, *, home: Path, **kw: Any) -> VersionAudit:
        decision = GateDecision(
            outcome="fail",
            checks=[GateCheck(name="fpr disparity", outcome="fail", detail="too wide")],
        )
        content = report_content(
            audit, title=f"audit v{version}", model_version=version, data_digests={"test": "d"},
            policy_version=policy.policy_version, decision=decision,
            extra={"population": "the tested population"},
        )  # fmt: skip
        written = keep_report(content, version_dir(home, PERSON_MODEL, version))
        return VersionAudit(
            version, audit, content, written, {"test": "d"}, decision, "the tested population"
        )

    monkeypatch.setattr(promotion, "run_audit", run_audit)
    monkeypatch.setattr(promotion, "current_champion", lambda name, uri: aliases["champion"])
    monkeypatch.setattr(
        promotion, "set_champion", lambda name, version, uri: aliases.update(champion=version)
    )
    monkeypatch.setattr(fairness_cli, "_edges", lambda: (home, "sqlite://"))
    return aliases


def _user(runner: CliRunner, name: str, role: str, *extra: str) -> str:
    added = runner.invoke(build_app(), ["users", "add", name, "--role", role, *extra])
    assert added.exit_code == 0, added.output
    found = re.search(r"token=(\S+)", added.output)
    assert found is not None
    return found.group(1)


def test_audit_prints_the_hash_the_ledger_records_and_keeps_every_report(
    home: Path, fake_gate: dict[str, Any]
) -> None:
    runner, app = CliRunner(), build_app()
    printed = []
    for _ in range(2):
        done = runner.invoke(app, ["audit", "3", "--by", "ana"])
        assert done.exit_code == 0, done.output + repr(done.exception)
        found = re.search(r"sha256:\s+([0-9a-f]{64}) \(of the JSON", done.stdout)
        assert found is not None, done.stdout
        printed.append(found.group(1))
        assert "audit of v3: done in" in done.stderr  # progress on stderr
    entries = open_ledger().entries(version="3")
    assert [e.report_sha256 for e in entries] == printed
    folders = kept_reports(version_dir(home, PERSON_MODEL, "3"))
    assert len(folders) == 2  # two audits, two reports: nothing overwritten
    hashes = [
        hashlib.sha256((f / "fairness-report.json").read_bytes()).hexdigest() for f in folders
    ]
    assert hashes == printed
    assert report_problems(entries, home) == []


def test_override_needs_an_auditor_token_and_records_that_user(
    home: Path, fake_gate: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner, app = CliRunner(), build_app()
    auditor = _user(runner, "Cy Auditor", "auditor")
    officer = _user(runner, "olga", "officer", "--region", "AST")
    revoked = _user(runner, "old-auditor", "auditor")
    assert runner.invoke(app, ["users", "revoke", "old-auditor"]).exit_code == 0
    args = ["promote", "4", "--override", "--reason", REASON]

    def refused(extra: list[str], message: str, env: dict[str, str] | None = None) -> None:
        done = runner.invoke(app, [*args, *extra], env=env)
        assert isinstance(done.exception, OverrideRefused), done.output
        assert done.exception.exit_code == 2 and message in str(done.exception)
        last = open_ledger().entries(version="4")[-1]
        assert (last.kind, last.decision, last.role) == (
            "refusal",
            "override refused",
            "unauthenticated",
        )
        assert message in last.reasons[0] and fake_gate["champion"] is None

    refused(["--by", "bo", "--role", "auditor"], "RISKCAST_TOKEN")  # self-declared: refused
    refused([], "unknown or revoked", {"RISKCAST_TOKEN": "rc_not-a-token"})
    refused([], "unknown or revoked", {"RISKCAST_TOKEN": revoked})
    refused([], "holds the role officer", {"RISKCAST_TOKEN": officer})
    refused(["--by", "bo"], "--by 'bo' but the token is 'Cy Auditor'", {"RISKCAST_TOKEN": auditor})
    assert open_ledger().entries(version="4", kind="audit") == []  # refused before auditing

    token_file = tmp_path / "token"
    token_file.write_text(auditor + "\n", "utf-8")
    done = runner.invoke(app, [*args, "--token-file", str(token_file), "--role", "officer"])
    assert done.exit_code == 0, done.output + repr(done.exception)
    assert "OVERRIDE by Cy Auditor (auditor, authenticated)" in done.stdout
    assert fake_gate["champion"] == "4"
    ledger = open_ledger()
    audit_entry, override = ledger.entries(version="4")[-2:]
    for entry in (audit_entry, override):  # the table's name and role, not the flags'
        assert (entry.actor, entry.role) == ("Cy Auditor", "auditor")
    assert override.kind == "override" and override.decision == "overridden"
    assert f"reason: {REASON}" in override.reasons
    assert override.report_sha256 == audit_entry.report_sha256
    assert ledger.verify().ok and report_problems(ledger.entries(), home) == []

    env_done = runner.invoke(app, [*args], env={"RISKCAST_TOKEN": auditor})
    assert isinstance(env_done.exception, Exception)  # v4 is champion already
    assert "already the champion" in str(env_done.exception)


def test_promote_without_override_still_needs_by(home: Path, fake_gate: dict[str, Any]) -> None:
    done = CliRunner().invoke(build_app(), ["promote", "5", "--reason", "first"])
    assert isinstance(done.exception, InputError) and done.exception.exit_code == 2
    assert "--by NAME is required" in str(done.exception)
    refused = CliRunner().invoke(build_app(), ["promote", "5", "--by", "ana", "--reason", "x"])
    assert refused.exit_code == 1 and "refused: v5 stays" in refused.stdout
    last = open_ledger().entries(version="5")[-1]
    assert (last.kind, last.actor) == ("refusal", "ana")
