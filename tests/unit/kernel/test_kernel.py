"""The shared kernel (`riskcast/`): atomic writes, database engines, settings, configuration files
and the chain commands' factory. Each test fails on the behaviour the kernel replaced."""

from __future__ import annotations

import ast
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import typer
import yaml
from pydantic_settings import BaseSettings
from rich.table import Table
from typer.testing import CliRunner

from riskcast import atomic
from riskcast.chain.cli import chain_group
from riskcast.chain.settings import ChainSettings
from riskcast.configio import find_config
from riskcast.db import BUSY_TIMEOUT_MS, IMMEDIATE, make_engine, masked
from riskcast.errors import ConfigError, StoreError
from riskcast.settings import Settings, read_settings

ROOT = Path(__file__).resolve().parents[3]


# ---- atomic writes ---------------------------------------------------------------------------
def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "state.json"
    atomic.write_text(target, "old")
    atomic.write_text(target, "new")
    assert target.read_text(encoding="utf-8") == "new"
    assert [p.name for p in target.parent.iterdir()] == ["state.json"]


def test_atomic_write_keeps_the_old_file_on_error(tmp_path: Path) -> None:
    target = tmp_path / "frame.parquet"
    target.write_bytes(b"old")

    def half_then_fail(tmp: Path) -> None:
        tmp.write_bytes(b"half of the new")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic.write_with(target, half_then_fail)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["frame.parquet"]


def test_atomic_write_fsyncs_file_and_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real = atomic.os.fsync
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    atomic.write_bytes(tmp_path / "x.bin", b"data")
    assert len(synced) == 2  # the new file's content, then the folder's entry


# ---- database engines ------------------------------------------------------------------------
def test_masked_hides_the_password() -> None:
    url = "postgresql+psycopg://riskcast:s3cret@db.example:5432/riskcast"
    assert masked(url) == "postgresql+psycopg://riskcast:***@db.example:5432/riskcast"
    assert "s3cret" not in masked(sa.make_url(url))
    assert masked("sqlite:////var/riskcast.sqlite") == "sqlite:////var/riskcast.sqlite"


@pytest.mark.parametrize(
    "url", ["nosuchdb://me:s3cret@host/db", "postgresql+nosuchdriver://me:s3cret@host/db"]
)
def test_a_refused_url_is_named_without_its_password(url: str) -> None:
    with pytest.raises(StoreError) as caught:
        make_engine(url, what="online store")
    message = str(caught.value)
    assert "s3cret" not in message
    assert "online store" in message and "RISKCAST_DATABASE_URL" in message


def test_online_store_messages_hide_the_password() -> None:
    from features.online.store import SqlOnlineStore

    with pytest.raises(StoreError) as caught:
        SqlOnlineStore("nosuchdb://me:s3cret@host/db")
    assert "s3cret" not in str(caught.value)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    made = make_engine(f"sqlite:///{tmp_path / 'k.sqlite'}")
    yield made
    made.dispose()


def _pragma(engine: sa.Engine, name: str) -> Any:
    with engine.connect() as conn:
        return conn.exec_driver_sql(f"PRAGMA {name}").scalar()


def test_sqlite_engine_uses_wal_and_waits_for_writers(engine: sa.Engine, tmp_path: Path) -> None:
    assert _pragma(engine, "journal_mode") == "wal"
    assert _pragma(engine, "busy_timeout") == BUSY_TIMEOUT_MS
    assert _pragma(engine, "synchronous") == 2  # FULL: every commit is durable
    rebuildable = make_engine(f"sqlite:///{tmp_path / 'k.sqlite'}", rebuildable=True)
    assert _pragma(rebuildable, "synchronous") == 1  # NORMAL, for the online store only
    rebuildable.dispose()


def test_sqlalchemy_opens_the_transactions(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        conn.begin()
        raw: Any = conn.connection.driver_connection
        assert raw.in_transaction  # BEGIN sent at begin(), not at the first write
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")  # DDL inside the transaction
        conn.rollback()
    assert not sa.inspect(engine).has_table("t")


def test_immediate_connections_take_the_write_lock_at_begin(
    engine: sa.Engine, tmp_path: Path
) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    other = sqlite3.connect(tmp_path / "k.sqlite", timeout=0, isolation_level=None)
    try:
        with engine.connect().execution_options(**{IMMEDIATE: True}) as writer, writer.begin():
            writer.exec_driver_sql("SELECT 1")  # only a read: the lock was taken by BEGIN
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again after the commit
        other.execute("ROLLBACK")
    finally:
        other.close()


# ---- settings --------------------------------------------------------------------------------
def _variables(model: type[BaseSettings]) -> set[str]:
    """The environment variables a settings class reads itself (not its nested groups)."""
    prefix = str(model.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseSettings):
            continue  # a nested group reads its own variables
        alias = info.validation_alias
        choices = getattr(alias, "choices", None)
        if choices is not None:
            names |= {str(c).upper() for c in choices if str(c).isupper()}
        else:
            names.add(f"{prefix}{name}".upper())
    return names


def test_each_variable_is_read_by_one_settings_group() -> None:
    from serving.settings import ServingSettings

    groups = {
        "kernel": _variables(Settings),
        "chain": _variables(ChainSettings),
        "serving": _variables(ServingSettings),
    }
    seen: dict[str, str] = {}
    for group, names in groups.items():
        for name in names:
            assert name not in seen, f"{name} is read by both {seen[name]} and {group}"
            seen[name] = group
    expected = {
        "RISKCAST_HOME": "kernel",
        "RISKCAST_DATABASE_URL": "kernel",
        "RISKCAST_MODE": "kernel",
        "RISKCAST_CONFIG_DIR": "kernel",
        "MLFLOW_TRACKING_URI": "kernel",
        "RISKCAST_CHAIN_KEY": "chain",
        "RISKCAST_CHAIN_ANCHOR_DIR": "chain",
        "RISKCAST_TOKEN_PEPPER": "serving",
        "RISKCAST_PORT": "serving",
        "PORT": "serving",
    }
    assert {name: seen.get(name) for name in expected} == expected


def test_the_service_sees_the_kernel_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from serving.settings import ServingSettings, load_serving_settings

    monkeypatch.setenv("RISKCAST_HOME", str(tmp_path / "env-home"))
    monkeypatch.setenv("RISKCAST_DATABASE_URL", "sqlite:///elsewhere.sqlite")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.invalid")
    monkeypatch.delenv("RISKCAST_MODE", raising=False)
    served = load_serving_settings()
    kernel = read_settings()
    assert (served.home, served.database_url, served.mode, served.mlflow_tracking_uri) == (
        kernel.home,
        kernel.database_url,
        kernel.mode,
        kernel.mlflow_tracking_uri,
    )
    assert served.store_settings() == served.kernel
    given = ServingSettings(home=tmp_path / "given", database_url=None, mlflow_tracking_uri=None)
    assert (given.home, given.database_url, given.mlflow_tracking_uri) == (
        tmp_path / "given",
        None,
        None,
    )
    assert given.effective_database_url == Settings(home=tmp_path / "given").sqlite_url


def test_a_bad_setting_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISKCAST_MODE", "staging")
    with pytest.raises(ConfigError, match="mode"):
        read_settings()


def test_the_tracking_uri_follows_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from training.tracking import tracking_uri

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.invalid:5000")
    assert tracking_uri(tmp_path) == "http://mlflow.invalid:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    assert tracking_uri(tmp_path) == f"sqlite:///{(tmp_path / 'mlflow.db').resolve()}"


@dataclass
class _EnvReads(ast.NodeVisitor):
    """Names of the functions in which ``os.environ`` or ``os.getenv`` appears."""

    found: list[str] = field(default_factory=list)
    stack: list[str] = field(default_factory=list)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.stack.append(node.name)
        self.generic_visit(node)
        self.stack.pop()

    def visit_Attribute(self, node: ast.Attribute) -> None:
        os_name = isinstance(node.value, ast.Name) and node.value.id == "os"
        if os_name and node.attr in {"environ", "getenv"}:
            self.found.append(self.stack[-1] if self.stack else "<module>")
        self.generic_visit(node)


@pytest.mark.parametrize(
    ("module", "allowed"),
    [
        ("riskcast/configio.py", set()),
        ("training/config.py", set()),
        # MLflow keeps its URI in the environment: the session sets and restores it there
        ("training/tracking.py", {"tracking_session"}),
    ],
)
def test_settings_are_not_read_from_the_raw_environment(module: str, allowed: set[str]) -> None:
    reads = _EnvReads()
    reads.visit(ast.parse((ROOT / module).read_text(encoding="utf-8")))
    assert set(reads.found) <= allowed, f"{module} reads os.environ in {sorted(reads.found)}"


# ---- configuration files ---------------------------------------------------------------------
def test_a_config_dir_without_the_file_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RISKCAST_CONFIG_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match=r"RISKCAST_CONFIG_DIR=.* has no training\.yaml"):
        find_config("training.yaml")
    (tmp_path / "training.yaml").write_text("{}", encoding="utf-8")
    assert find_config("training.yaml") == tmp_path / "training.yaml"


def test_training_config_errors_name_the_file_and_the_field(tmp_path: Path) -> None:
    from training.config import load_training_config

    raw = yaml.safe_load((ROOT / "configs" / "training.yaml").read_text(encoding="utf-8"))
    raw["trials"] = 0
    path = tmp_path / "training.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_training_config(path, ROOT / "configs" / "labels.yaml")
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert "trials: Input should be greater than or equal to 1" in message

    path.write_text("tiers: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match=f"{path}: not valid YAML"):
        load_training_config(path, ROOT / "configs" / "labels.yaml")


def test_the_training_config_is_found_through_the_config_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from training.config import load_training_config

    for name in ("training.yaml", "labels.yaml"):
        (tmp_path / name).write_text(
            (ROOT / "configs" / name).read_text(encoding="utf-8"), encoding="utf-8"
        )
    monkeypatch.setenv("RISKCAST_CONFIG_DIR", str(tmp_path))
    resolved = load_training_config()
    assert (resolved.source, resolved.labels_source) == (
        tmp_path / "training.yaml",
        tmp_path / "labels.yaml",
    )
    (tmp_path / "training.yaml").unlink()
    with pytest.raises(ConfigError, match="RISKCAST_CONFIG_DIR"):
        load_training_config()


# ---- the chain commands' factory ---------------------------------------------------------------
@dataclass
class _Result:
    ok: bool
    entries: int = 3
    head: str | None = "abc"
    problems: list[str] = field(default_factory=list)
    anchored: int | None = None
    anchors: str | None = None


@dataclass
class _Log:
    result: _Result
    disposed: list[bool] = field(default_factory=list)

    def verify(self, *, head: str | None = None) -> _Result:
        return self.result

    def dispose(self) -> None:
        self.disposed.append(True)


def _app(log: _Log) -> typer.Typer:
    def show() -> None:
        """List nothing."""
        typer.echo(Table().row_count)

    app = typer.Typer()
    app.add_typer(
        chain_group(
            name="things", label="thing log", help="Things.", opener=lambda _: log, show=show
        )
    )
    return app


def test_the_chain_group_verifies_and_closes_the_log() -> None:
    intact = _Log(_Result(ok=True))
    done = CliRunner().invoke(_app(intact), ["things", "verify"])
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == "thing log intact: 3 entries, head abc"
    assert intact.disposed == [True]
    broken = _Log(_Result(ok=False, problems=["seq 2: content edited"]))
    failed = CliRunner().invoke(_app(broken), ["things", "verify"])
    assert failed.exit_code == 1
    assert "thing log NOT intact" in failed.stderr and "seq 2: content edited" in failed.stderr
    assert broken.disposed == [True]
    shown = CliRunner().invoke(_app(intact), ["things", "show"])
    assert shown.exit_code == 0 and shown.stdout.strip() == "0"
