"""The promotion ledger on SQLite: keyed hash chain, anchors, tamper detection, triggers,
concurrency, settings, CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fairness.ledger import Ledger, open_ledger
from riskcast.chain.settings import DEFAULT_CHAIN_KEY, ChainSettings, load_chain_settings
from riskcast.errors import ConfigError, InputError, StoreError
from riskcast.settings import Settings, get_settings
from serving.cli import build_app
from tests import ledger_checks as checks


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.sqlite'}"


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    store = Ledger(_url(tmp_path), key=checks.KEY, anchor_dir=tmp_path / "anchors")
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


def test_newest_deleted_is_detected(ledger: Ledger) -> None:
    checks.check_newest_deleted_is_detected(ledger)


def test_plain_rehash_of_the_rest_is_detected(ledger: Ledger) -> None:
    checks.check_plain_rehash_of_the_rest_is_detected(ledger)


def test_keyed_rehash_is_found_by_the_anchors(ledger: Ledger) -> None:
    checks.check_keyed_rehash_is_found_by_the_anchors(ledger)


def test_wrong_key_fails(ledger: Ledger, tmp_path: Path) -> None:
    checks.check_wrong_key_fails(ledger, _url(tmp_path), None, tmp_path / "anchors")


def test_missing_anchor_file_fails(ledger: Ledger) -> None:
    checks.check_missing_anchor_file_fails(ledger)


def test_a_writer_dying_after_its_commit(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    checks.check_a_writer_dying_after_its_commit(ledger, monkeypatch)


def test_verify_during_appends_never_alarms(tmp_path: Path) -> None:
    checks.check_verify_during_appends_never_alarms(_url(tmp_path), None, tmp_path / "anchors")


def test_concurrent_appends_keep_one_chain(tmp_path: Path) -> None:
    checks.check_concurrent_appends_keep_one_chain(_url(tmp_path), tmp_path / "anchors")


def test_unanchored_ledger_cannot_see_the_newest_deleted(tmp_path: Path) -> None:
    """Why the anchors: without them (the chain alone, as before) the deletion passes."""
    bare = Ledger(_url(tmp_path), key=checks.KEY, anchor_dir=None)
    checks.fill(bare, 4)
    checks.delete_newest(bare, 2)
    assert bare.verify().ok and bare.verify().anchored is None
    bare.dispose()


def test_anchor_files_are_per_database(tmp_path: Path) -> None:
    """One anchor directory serving two databases (as the tests' shared home does with SQLite
    and PostgreSQL) keeps their heads apart: neither raises a false alarm for the other."""
    anchors = tmp_path / "anchors"
    first = Ledger(f"sqlite:///{tmp_path / 'a.sqlite'}", key=checks.KEY, anchor_dir=anchors)
    second = Ledger(f"sqlite:///{tmp_path / 'b.sqlite'}", key=checks.KEY, anchor_dir=anchors)
    checks.fill(first, 5)
    checks.fill(second, 2)
    assert first.verify().ok and second.verify().ok
    assert first.chain.anchors is not None and second.chain.anchors is not None
    assert first.chain.anchors.path != second.chain.anchors.path
    assert sorted(p.name.split("-")[0] for p in anchors.iterdir()) == ["ledger_entries"] * 2
    first.dispose()
    second.dispose()


def test_reopening_restores_dropped_triggers(tmp_path: Path) -> None:
    url = _url(tmp_path)
    first = Ledger(url, key=checks.KEY, anchor_dir=tmp_path / "anchors")
    checks.fill(first, 2)
    checks.drop_triggers(first)
    first.dispose()
    again = Ledger(url, key=checks.KEY, anchor_dir=tmp_path / "anchors")
    assert again.verify().ok
    with pytest.raises(Exception, match="append-only"):
        checks.raw(again, "DELETE FROM ledger_entries")
    again.dispose()


def test_open_ledger_defaults_to_sqlite_under_home(tmp_path: Path) -> None:
    ledger = open_ledger(Settings(home=tmp_path / "home", database_url=None))
    ledger.append("audit", actor="a", role="r", version="v1", decision="pass", reasons=[])
    ledger.dispose()
    assert (tmp_path / "home" / "riskcast.sqlite").is_file()
    (anchor,) = (tmp_path / "home" / "anchors").iterdir()
    assert anchor.name.startswith("ledger_entries-") and anchor.suffix == ".heads"


def test_chain_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RISKCAST_MODE", "RISKCAST_CHAIN_KEY", "RISKCAST_CHAIN_ANCHOR_DIR"):
        monkeypatch.delenv(name, raising=False)
    dev = load_chain_settings()
    assert dev.key == DEFAULT_CHAIN_KEY.encode()
    assert dev.anchor_dir(tmp_path) == (tmp_path / "anchors").resolve()
    monkeypatch.setenv("RISKCAST_MODE", "production")
    with pytest.raises(ConfigError, match="RISKCAST_CHAIN_KEY must be set"):
        load_chain_settings()
    monkeypatch.setenv("RISKCAST_CHAIN_KEY", "too-short")
    with pytest.raises(ConfigError, match="RISKCAST_CHAIN_KEY"):
        load_chain_settings()
    monkeypatch.setenv("RISKCAST_CHAIN_KEY", "a-long-production-chain-key")
    monkeypatch.setenv("RISKCAST_CHAIN_ANCHOR_DIR", str(tmp_path / "elsewhere"))
    prod = load_chain_settings()
    assert prod.key == b"a-long-production-chain-key"
    assert prod.anchor_dir(tmp_path / "home") == (tmp_path / "elsewhere").resolve()
    # the key reaches the ledger: written with it, verified only with it
    ledger = open_ledger(Settings(home=tmp_path / "home", database_url=None))
    checks.fill(ledger, 2)
    assert ledger.chain.key == b"a-long-production-chain-key" and ledger.verify().ok
    ledger.dispose()
    other = open_ledger(
        Settings(home=tmp_path / "home", database_url=None),
        chain=ChainSettings(chain_key="a-different-production-key", chain_anchor_dir=None),
    )
    assert not other.verify().ok
    other.dispose()


def test_the_service_refuses_the_default_chain_key_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from serving.settings import load_serving_settings

    monkeypatch.setenv("RISKCAST_MODE", "production")
    monkeypatch.setenv("RISKCAST_TOKEN_PEPPER", "a-long-production-secret")
    monkeypatch.delenv("RISKCAST_CHAIN_KEY", raising=False)
    with pytest.raises(ConfigError, match="RISKCAST_CHAIN_KEY must be set"):
        load_serving_settings()
    monkeypatch.setenv("RISKCAST_CHAIN_KEY", "a-long-production-chain-key")
    settings = load_serving_settings()
    assert settings.chain.key == b"a-long-production-chain-key"


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
    assert ledger.chain.anchors is not None
    assert verified.stdout.strip() == (
        f"ledger intact: 4 entries, head {head}, anchored through seq 4 in "
        f"{ledger.chain.anchors.path}"
    )

    checks.drop_triggers(ledger)
    checks.raw(ledger, "UPDATE ledger_entries SET actor = 'someone else' WHERE seq = 2")
    checks.raw(ledger, "DELETE FROM ledger_entries WHERE seq = 3")
    ledger.dispose()
    broken = runner.invoke(app, ["ledger", "verify"])
    assert broken.exit_code == 1
    assert "seq 2: content edited" in broken.stderr
    assert "seq 3: missing" in broken.stderr
    assert "seq 4: chain broken" in broken.stderr


def test_cli_verify_finds_the_newest_deleted_without_a_head(home: Path) -> None:
    ledger = open_ledger()
    checks.fill(ledger, 4)
    checks.delete_newest(ledger, 1)
    ledger.dispose()
    broken = CliRunner().invoke(build_app(), ["ledger", "verify"])
    assert broken.exit_code == 1
    assert "seq 4: missing at the end (the newest entries deleted)" in broken.stderr


def test_cli_show_empty_and_bad_kind(home: Path) -> None:
    runner = CliRunner()
    app = build_app()
    empty = runner.invoke(app, ["ledger", "show", "--json"])
    assert empty.exit_code == 0 and json.loads(empty.stdout) == []
    bad = runner.invoke(app, ["ledger", "show", "--kind", "nope"])
    assert isinstance(bad.exception, InputError)
