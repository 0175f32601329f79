"""The promotion ledger on SQLite: hash chain, tamper detection, triggers, concurrency, CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fairness.ledger import Ledger, open_ledger
from features.errors import InputError, StoreError
from features.settings import Settings, get_settings
from serving.cli import build_app
from tests import ledger_checks as checks


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    store = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    yield store
    store.dispose()


def test_chain(ledger: Ledger) -> None:
    checks.check_chain(ledger)


def test_triggers_block_update_and_delete(ledger: Ledger) -> None:
    checks.check_triggers_block_update_and_delete(ledger)


def test_edited_entry_is_detected(ledger: Ledger) -> None:
    checks.check_edited_entry_is_detected(ledger)


def test_rehashed_edit_is_detected(ledger: Ledger) -> None:
    checks.check_rehashed_edit_is_detected(ledger)


def test_deleted_entry_is_detected(ledger: Ledger) -> None:
    checks.check_deleted_entry_is_detected(ledger)


def test_reordered_entries_are_detected(ledger: Ledger) -> None:
    checks.check_reordered_entries_are_detected(ledger)


def test_concurrent_appends_keep_one_chain(tmp_path: Path) -> None:
    checks.check_concurrent_appends_keep_one_chain(f"sqlite:///{tmp_path / 'ledger.sqlite'}")


def test_reopening_restores_dropped_triggers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    first = Ledger(url)
    checks.fill(first, 2)
    checks.drop_triggers(first)
    first.dispose()
    again = Ledger(url)
    assert again.verify().ok
    with pytest.raises(Exception, match="append-only"):
        checks.raw(again, "DELETE FROM ledger_entries")
    again.dispose()


def test_open_ledger_defaults_to_sqlite_under_home(tmp_path: Path) -> None:
    ledger = open_ledger(Settings(home=tmp_path / "home", database_url=None))
    ledger.append("audit", actor="a", role="r", version="v1", decision="pass", reasons=[])
    ledger.dispose()
    assert (tmp_path / "home" / "riskcast.sqlite").is_file()


@pytest.mark.parametrize("url", ["not a url", "nosuchdb://host/db"])
def test_bad_url_names_the_variable(tmp_path: Path, url: str) -> None:
    with pytest.raises(StoreError, match="RISKCAST_DATABASE_URL"):
        open_ledger(Settings(home=tmp_path, database_url=url))


def test_password_is_not_echoed(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as caught:
        open_ledger(Settings(home=tmp_path, database_url="nosuchdb://me:s3cret@host/db"))
    assert "s3cret" not in str(caught.value)


def test_schema_needs_postgresql(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="schema"):
        open_ledger(Settings(home=tmp_path, database_url=None), schema="x")


# ---- CLI -------------------------------------------------------------------------------------
@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    monkeypatch.setenv("RISKCAST_HOME", str(home))
    monkeypatch.delenv("RISKCAST_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


def test_cli_show_and_verify(home: Path) -> None:
    ledger = open_ledger()
    checks.fill(ledger, 4)
    head = ledger.verify().head
    runner = CliRunner()
    app = build_app()

    shown = runner.invoke(app, ["ledger", "show", "--json", "--version", "v2"])
    assert shown.exit_code == 0, shown.output
    rows = json.loads(shown.stdout)
    assert [r["seq"] for r in rows] == [2, 4]
    assert rows[0]["kind"] == "promotion" and rows[0]["report_sha256"] == checks.SHA

    table = runner.invoke(app, ["ledger", "show", "--kind", "refusal"])
    assert table.exit_code == 0, table.output
    assert "ledger: 1 entries" in table.stdout and "refusal" in table.stdout

    verified = runner.invoke(app, ["ledger", "verify", "--head", str(head)])
    assert verified.exit_code == 0, verified.output
    assert verified.stdout.strip() == f"ledger intact: 4 entries, head {head}"

    checks.drop_triggers(ledger)
    checks.raw(ledger, "UPDATE ledger_entries SET actor = 'someone else' WHERE seq = 2")
    checks.raw(ledger, "DELETE FROM ledger_entries WHERE seq = 3")
    ledger.dispose()
    broken = runner.invoke(app, ["ledger", "verify"])
    assert broken.exit_code == 1
    assert "seq 2: content edited" in broken.stderr
    assert "seq 3: missing" in broken.stderr
    assert "seq 4: chain broken" in broken.stderr


def test_cli_show_empty_and_bad_kind(home: Path) -> None:
    runner = CliRunner()
    app = build_app()
    empty = runner.invoke(app, ["ledger", "show", "--json"])
    assert empty.exit_code == 0 and json.loads(empty.stdout) == []
    bad = runner.invoke(app, ["ledger", "show", "--kind", "nope"])
    assert isinstance(bad.exception, InputError)
