"""Database URLs and unreachable databases become one clear line (`riskcast.db`), and
``--home`` sets the home for the process (`riskcast.settings.use_home`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from riskcast.db import make_engine, reach, url_hint
from riskcast.errors import ConfigError, StoreError
from riskcast.settings import get_settings, use_home


def test_postgres_scheme_gets_the_url_to_write_with_the_password_masked() -> None:
    with pytest.raises(StoreError) as err:
        make_engine("postgres://u:secret@db.example:5432/rc", what="online store")
    text = str(err.value)
    assert "online store" in text and "secret" not in text
    assert "write 'postgresql+psycopg://u:***@db.example:5432/rc'" in text
    assert url_hint("postgresql+psycopg://h/db") == "" and url_hint("sqlite:///x") == ""


def test_unreachable_database_is_one_line_without_password() -> None:
    engine = make_engine("postgresql+psycopg://u:secret@127.0.0.1:1/nowhere")
    try:
        with pytest.raises(StoreError) as err:
            reach(engine, what="service database")
    finally:
        engine.dispose()
    text = str(err.value)
    assert text.startswith("cannot reach the service database at postgresql+psycopg://u:***@")
    assert "\n" not in text and "secret" not in text and "sqlalche.me" not in text


def test_reachable_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite'}")
    try:
        reach(engine)
    finally:
        engine.dispose()


def test_mlflow_postgres_scheme_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from training.tracking import tracking_uri

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgres://u@h:5432/ml")
    with pytest.raises(ConfigError, match=r"postgresql\+psycopg://u@h:5432/ml"):
        tracking_uri(Path("var"))


def test_use_home_sets_the_home_for_the_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RISKCAST_HOME", str(tmp_path / "before"))
    get_settings.cache_clear()
    assert get_settings().home == tmp_path / "before"
    assert use_home(None) is None and get_settings().home == tmp_path / "before"
    assert use_home(tmp_path / "after") == tmp_path / "after"
    assert get_settings().home == tmp_path / "after"
    get_settings.cache_clear()  # monkeypatch restores RISKCAST_HOME; forget what was read
