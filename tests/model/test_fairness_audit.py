"""`riskcast audit` / `promote` on the tiny trained version (shared session fixture)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from riskcast.errors import InputError
from serving.cli import build_app
from tests.model.conftest import Trained, use_home_copy


@pytest.fixture
def home(trained: Trained, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A copy of the trained home: aliases and the ledger change there, not in the shared one
    (other tests check that training never sets `champion`)."""
    from riskcast.settings import get_settings

    copy = use_home_copy(trained, monkeypatch, tmp_path)
    yield copy
    get_settings.cache_clear()


def _auditor_env(app: Any, runner: CliRunner, name: str = "cy") -> dict[str, str]:
    """An auditor in the users table and the environment proving them (RISKCAST_TOKEN):
    an override must be made by an authenticated auditor."""
    added = runner.invoke(app, ["users", "add", name, "--role", "auditor"])
    assert added.exit_code == 0, added.output
    found = re.search(r"token=(\S+)", added.output)
    assert found is not None
    return {"RISKCAST_TOKEN": found.group(1)}


def test_audit_promote_and_override(trained: Trained, home: Path) -> None:
    from fairness.ledger import open_ledger
    from fairness.promotion import current_champion
    from training.tracking import tracking_uri

    app, runner, v = build_app(), CliRunner(), trained.version
    audited = runner.invoke(app, ["audit", v, "--by", "ana"])
    assert audited.exit_code == 0, audited.output + repr(audited.exception)
    report = home / "reports" / f"recidivism-risk-v{v}" / "fairness-report.html"
    assert report.is_file() and "report:" in audited.output
    content = json.loads(report.with_suffix(".json").read_text())
    names = [a["attribute"] for a in content["audit"]["attributes"]]
    assert {"sex", "ethnicity", "age_band", "region", "settlement"} <= set(names)
    assert "ethnicity × region" in names and "sex × age_band" in names
    assert content["proxies"] and all("strongest" in p for p in content["proxies"])
    assert content["data_digests"]["test"]
    served = "persons with at least one criminal case known by the as-of date, aged 14 or more"
    assert served in content["population"]  # the audited population is the served one
    assert "population of validity" in report.read_text()

    ledger = open_ledger()
    assert [e.kind for e in ledger.entries(version=v)] == ["audit"]
    assert ledger.entries()[-1].report_sha256 is not None

    promoted = runner.invoke(app, ["promote", v, "--by", "ana", "--reason", "first model"])
    uri = tracking_uri(home)
    kinds = [e.kind for e in ledger.entries(version=v)]
    assert any(served in r for r in ledger.entries(version=v)[-1].reasons)
    if promoted.exit_code == 0:
        assert kinds[-1] == "promotion" and current_champion("recidivism-risk", uri) == v
        return
    assert "refused" in promoted.output and kinds[-1] == "refusal"
    assert current_champion("recidivism-risk", uri) is None
    assert ledger.entries(version=v)[-1].reasons  # which checks failed

    denied = runner.invoke(
        app, ["promote", v, "--by", "bo", "--reason", "ship it anyway", "--override"]
    )
    assert isinstance(denied.exception, InputError) and "auditor" in str(denied.exception)
    assert current_champion("recidivism-risk", uri) is None

    forced = runner.invoke(
        app,
        ["promote", v, "--by", "cy", "--role", "auditor", "--override",
         "--reason", "accepted: small groups reviewed by hand"],
        env=_auditor_env(app, runner),
    )  # fmt: skip
    assert forced.exit_code == 0, forced.output + repr(forced.exception)
    assert current_champion("recidivism-risk", uri) == v
    last = ledger.entries(version=v)[-1]
    assert (last.kind, last.actor, last.role) == ("override", "cy", "auditor")
    assert ledger.verify().ok


def test_recorded_test_digest_equals_rebuild(trained: Trained, home: Path) -> None:
    """Same store + config → same digest: the audit's rebuild of the test snapshot (built
    alone) hashes like the one training recorded (built with every other snapshot)."""
    from fairness.audit import load_version, rebuild_test_frame
    from training.tracking import tracking_uri

    ctx = load_version("recidivism-risk", trained.version, home=home, uri=tracking_uri(home))
    frame, digest = rebuild_test_frame(ctx, home)
    assert frame.height > 0
    assert digest == ctx.tags["riskcast.dataset_digest.test"]


def _promote(app: Any, runner: CliRunner, version: str, reason: str) -> None:
    """Promote, overriding as an auditor if the gate refuses (the tiny model may not pass)."""
    done = runner.invoke(app, ["promote", version, "--by", "ana", "--reason", reason])
    if done.exit_code != 0 or "refused" in done.output:
        done = runner.invoke(
            app,
            ["promote", version, "--override", "--reason", f"{reason} (accepted by hand)"],
            env=_auditor_env(app, runner, f"cy-{version}"),
        )  # fmt: skip
    assert done.exit_code == 0, done.output + repr(done.exception)


def test_rollback_moves_champion_back(trained: Trained, home: Path) -> None:
    from fairness.ledger import open_ledger
    from fairness.promotion import current_champion
    from training.tracking import tracking_uri

    app, runner, a = build_app(), CliRunner(), trained.version
    uri = tracking_uri(home)
    _promote(app, runner, a, "first model")
    assert current_champion("recidivism-risk", uri) == a

    again = runner.invoke(app, ["train", "--config", str(trained.config), "--trials", "2"])
    assert again.exit_code == 0, again.output + repr(again.exception)
    match = re.search(r"model version: recidivism-risk v(\d+)", again.output)
    assert match, again.output
    b = match.group(1)
    assert b != a
    _promote(app, runner, b, "second model")
    assert current_champion("recidivism-risk", uri) == b

    back = runner.invoke(app, ["rollback", "--by", "dee", "--reason", "withdraw second model"])
    assert back.exit_code == 0, back.output + repr(back.exception)
    assert f"v{b} -> v{a}" in back.output
    assert current_champion("recidivism-risk", uri) == a
    ledger = open_ledger()
    last = ledger.entries()[-1]
    assert (last.kind, last.version, last.actor) == ("rollback", a, "dee")
    assert any(f"v{b} withdrawn" in r for r in last.reasons)
    assert ledger.verify().ok


def test_a_version_without_a_population_of_validity_is_never_promoted(
    trained: Trained, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service refuses to serve a version that declares no population, so the gate must
    not make it champion either (not even by an auditor's override)."""
    from fairness import audit
    from fairness.ledger import open_ledger
    from fairness.promotion import current_champion
    from training.tracking import tracking_uri

    monkeypatch.setattr(audit, "population_of_validity", lambda ctx: None)
    app, runner, v = build_app(), CliRunner(), trained.version
    refused = runner.invoke(
        app,
        [
            "promote",
            v,
            "--by",
            "cy",
            "--role",
            "auditor",
            "--override",
            "--reason",
            "accepted after manual review",
        ],
        env=_auditor_env(app, runner),
    )
    assert isinstance(refused.exception, InputError)
    assert "declares no population of validity" in str(refused.exception)
    assert current_champion("recidivism-risk", tracking_uri(home)) is None
    last = open_ledger().entries(version=v)[-1]
    assert last.kind == "refusal" and "no population of validity" in last.reasons[0]
