"""`riskcast places audit | promote` end to end on a real MLflow registry (SQLite in a temporary
home) holding synthetic test predictions: the first version passes without a champion, a worse
challenger is refused, an override needs an authenticated auditor; promotions, refusals and
overrides go to the one ledger with the model in their version, the chain and the kept reports
verify, and the person model's rollback history does not see them."""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from fairness.ledger import ledger_version, open_ledger, split_version
from fairness.places import cli as places_cli
from fairness.places.report import EXPOSURE_PNG
from fairness.places.synthetic import Scenario, predictions
from fairness.promotion import OverrideRefused, champion_history
from fairness.report_store import kept_reports, report_problems, version_dir
from riskcast.names import CHALLENGER, CHAMPION, PERSON_MODEL, PLACES_MODEL
from riskcast.settings import get_settings

REASON = "the places gate reviewed by hand"


@dataclass(frozen=True)
class _User:
    name: str
    role: str


class _Users:
    def authenticate(self, token: str) -> _User | None:
        return {"aud": _User("Cy Auditor", "auditor"), "off": _User("olga", "officer")}.get(token)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("RISKCAST_HOME", str(home))
    for name in ("RISKCAST_DATABASE_URL", "MLFLOW_TRACKING_URI", "RISKCAST_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


def _register(home: Path, noise: float, seed: int) -> str:
    """A `street-crime` version whose run holds synthetic test predictions; made challenger."""
    from training.tracking import ensure_experiment, tracking_session, tracking_uri

    uri = tracking_uri(home)
    with tracking_session(uri) as client:
        experiment = ensure_experiment(client, "places-test", home, uri)
        with contextlib.suppress(Exception):  # already registered
            client.create_registered_model(PLACES_MODEL)
        run = client.create_run(experiment)
        folder = Path(tempfile.mkdtemp(dir=home))
        path = folder / "test_predictions.parquet"
        predictions(Scenario(seed=3), noise=noise, seed=seed).write_parquet(path)
        client.log_artifact(run.info.run_id, str(path), "places")
        mv = client.create_model_version(
            PLACES_MODEL, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id
        )
        client.set_registered_model_alias(PLACES_MODEL, CHALLENGER, mv.version)
        return str(mv.version)


def _alias(home: Path, alias: str) -> str | None:
    from training.tracking import tracking_session, tracking_uri

    with tracking_session(tracking_uri(home)) as client:
        try:
            return str(client.get_model_version_by_alias(PLACES_MODEL, alias).version)
        except Exception:
            return None


def _app() -> typer.Typer:
    app, places = typer.Typer(), typer.Typer()

    @app.callback()
    def _root() -> None:
        """test root"""

    places_cli.register(places, authenticator=_Users)
    app.add_typer(places, name="places")
    return app


def test_audit_promote_refuse_override_and_the_ledger(home: Path) -> None:
    runner, app = CliRunner(), _app()
    v1 = _register(home, noise=0.3, seed=1)

    audited = runner.invoke(app, ["places", "audit"])  # the challenger by default
    assert audited.exit_code == 0, audited.output + repr(audited.exception)
    assert "exposure by district" in audited.stdout and "feedback loop" in audited.stdout
    sha = re.search(r"sha256:\s+([0-9a-f]{64})", audited.stdout)
    assert sha is not None
    folders = kept_reports(version_dir(home, PLACES_MODEL, v1))
    assert len(folders) == 1 and (folders[0] / EXPOSURE_PNG).is_file()

    first = runner.invoke(app, ["places", "promote", "--by", "ana", "--reason", REASON])
    assert first.exit_code == 0, first.output + repr(first.exception)
    assert "no current champion" not in first.stdout  # a PASS is not repeated
    assert _alias(home, CHAMPION) == v1

    v2 = _register(home, noise=1.2, seed=2)  # a worse challenger
    refused = runner.invoke(app, ["places", "promote", "--by", "ana", "--reason", REASON])
    assert refused.exit_code == 1, refused.output
    assert "FAIL: PAI@5 % vs champion" in refused.stdout
    assert _alias(home, CHAMPION) == v1 and _alias(home, CHALLENGER) == v2

    no_token = runner.invoke(app, ["places", "promote", "--override", "--reason", REASON])
    assert isinstance(no_token.exception, OverrideRefused)
    officer = runner.invoke(
        app, ["places", "promote", "--override", "--reason", REASON], env={"RISKCAST_TOKEN": "off"}
    )
    assert isinstance(officer.exception, OverrideRefused)
    assert _alias(home, CHAMPION) == v1
    override = runner.invoke(
        app, ["places", "promote", "--override", "--reason", REASON], env={"RISKCAST_TOKEN": "aud"}
    )
    assert override.exit_code == 0, override.output + repr(override.exception)
    assert "OVERRIDE by Cy Auditor" in override.stdout
    assert _alias(home, CHAMPION) == v2

    ledger = open_ledger()
    entries = ledger.entries()
    kinds = [(e.kind, e.decision, split_version(e.version)) for e in entries]
    assert kinds == [
        ("audit", "pass", (PLACES_MODEL, v1)),
        ("audit", "pass", (PLACES_MODEL, v1)),
        ("promotion", "promoted", (PLACES_MODEL, v1)),
        ("audit", "fail", (PLACES_MODEL, v2)),
        ("refusal", "fail", (PLACES_MODEL, v2)),
        ("refusal", "override refused", (PLACES_MODEL, v2)),
        ("refusal", "override refused", (PLACES_MODEL, v2)),
        ("audit", "fail", (PLACES_MODEL, v2)),
        ("override", "overridden", (PLACES_MODEL, v2)),
    ]
    assert entries[0].report_sha256 == sha.group(1)
    assert entries[-1].actor == "Cy Auditor" and entries[-1].role == "auditor"
    assert any(r.startswith("model: street-crime") for r in entries[2].reasons)
    assert ledger.verify().ok
    assert report_problems(entries, home) == []
    # one ledger, two models: the person model's history and version filters ignore these
    assert champion_history(entries) == []
    assert champion_history(entries, PLACES_MODEL) == [v1, v2]
    assert ledger.entries(version=v1) == []
    assert len(ledger.entries(version=ledger_version(PLACES_MODEL, v1))) == 3


def test_ledger_version_keeps_person_entries_as_they_were() -> None:
    assert ledger_version(PERSON_MODEL, "7") == "7"
    assert split_version("7") == (PERSON_MODEL, "7")
    assert ledger_version(PLACES_MODEL, "7") == "street-crime@7"
    assert split_version("street-crime@7") == (PLACES_MODEL, "7")


def test_audit_names_a_missing_challenger(home: Path) -> None:
    done = CliRunner().invoke(_app(), ["places", "audit"])
    assert done.exit_code != 0
    assert "no 'challenger' version" in str(done.exception)
