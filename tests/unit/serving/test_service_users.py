"""User names that differ only by case or by look-alike characters are one name (SQLite)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from serving.cli import build_app
from serving.db import open_engine
from serving.users import UserConflict, UserStore, name_key
from tests.user_name_checks import (
    check_look_alikes_added_at_once_make_one_user,
    check_look_alikes_are_refused,
)


@pytest.fixture
def store(tmp_path: Path) -> UserStore:
    return UserStore(open_engine(f"sqlite:///{tmp_path / 'users.sqlite'}"), "a-test-pepper")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("demo-admin", "DEMO-ADMIN"),
        ("demo-admin", "ｄｅｍｏ－ａｄｍｉｎ"),
        ("Straße", "STRASSE"),
        ("ﬁona", "Fiona"),  # ligature
        ("\u212bngstr\u00f6m", "A\u030angstro\u0308m"),  # Angstrom sign; combining marks
        ("ana", "an\u200ba"),
    ],
)
def test_name_key_makes_look_alikes_one_name(a: str, b: str) -> None:
    assert name_key(a) == name_key(b)


def test_name_key_keeps_different_names_apart() -> None:
    assert len({name_key(n) for n in ("ana", "ána", "anna", "an-a", "an a", "ana1")}) == 6


def test_look_alike_names_are_refused_naming_the_existing_user(store: UserStore) -> None:
    check_look_alikes_are_refused(store)


def test_look_alikes_added_at_once_make_one_user(store: UserStore) -> None:
    check_look_alikes_added_at_once_make_one_user(store)


def test_the_cli_refuses_a_look_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISKCAST_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RISKCAST_DATABASE_URL", raising=False)
    runner = CliRunner()
    made = runner.invoke(build_app(), ["users", "add", "demo-admin", "--role", "admin"])
    assert made.exit_code == 0, made.output
    assert re.search(r"token=rc_\S+", made.output)
    again = runner.invoke(build_app(), ["users", "add", "ＤＥＭＯ-admin", "--role", "admin"])
    # `riskcast` (serving.cli.main) prints the error and exits with its exit code, 2
    assert isinstance(again.exception, UserConflict), again.output
    assert again.exception.exit_code == 2
    assert "a user named 'demo-admin' already exists" in str(again.exception)
    listed = runner.invoke(build_app(), ["users", "list"])
    assert "demo-admin" in listed.output and "ＤＥＭＯ" not in listed.output
