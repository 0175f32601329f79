"""A trained, promoted and materialised tiny champion, and an ASGI client without httpx."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
from collections.abc import Iterator, MutableMapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from fastapi import FastAPI
from typer.testing import CliRunner

from serving.cli import build_app
from tests.training_helpers import tiny_delivery, write_config


@dataclass
class Reply:
    status_code: int
    headers: dict[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.content)


class AsgiClient:
    """Drives an ASGI app in-process (lifespan included), like Starlette's TestClient."""

    def __init__(self, app: FastAPI, portal: BlockingPortal) -> None:
        self.app, self.portal = app, portal

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Reply:
        body = b"" if json_body is None else json.dumps(json_body).encode()
        headers = [(b"host", b"test")]
        if json_body is not None:
            headers.append((b"content-type", b"application/json"))
        if token is not None:
            headers.append((b"authorization", f"Bearer {token}".encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": urlencode(params or {}, doseq=True).encode(),
            "headers": headers,
            "client": ("127.0.0.1", 1),
            "server": ("test", 80),
        }
        reply: Reply = self.portal.call(self._call, scope, body)
        return reply

    async def _call(self, scope: dict[str, Any], body: bytes) -> Reply:
        sent = False
        out: dict[str, Any] = {"status": 0, "headers": {}, "body": b""}

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                out["status"] = message["status"]
                out["headers"] = {k.decode(): v.decode() for k, v in message["headers"]}
            elif message["type"] == "http.response.body":
                out["body"] += message.get("body", b"")

        await self.app(scope, receive, send)
        return Reply(out["status"], out["headers"], out["body"])

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Reply:
        return self.request("POST", path, **kw)


@contextmanager
def serve(app: FastAPI) -> Iterator[AsgiClient]:
    with start_blocking_portal() as portal:
        cm: AbstractContextManager[Any] = portal.wrap_async_context_manager(
            app.router.lifespan_context(app)
        )
        with cm:
            yield AsgiClient(app, portal)


@dataclass
class RecordingLog:
    entries: list[dict[str, Any]] = field(default_factory=list)

    def append(self, **entry: Any) -> dict[str, Any]:
        self.entries.append(entry)
        return entry


@dataclass
class ServiceEnv:
    home: Path
    model_version: str
    tokens: dict[str, str]
    persons: dict[str, list[str]]  # region -> materialised person ids inside the population
    outside: dict[str, list[str]] = field(default_factory=dict)
    """region -> materialised person ids outside the champion's population (never scored)"""


@contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """Set (or, with None, remove) environment variables for the block, settings read again;
    everything restored afterwards."""
    from riskcast.settings import get_settings

    def put(pairs: dict[str, str | None]) -> None:
        for k, v in pairs.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()

    saved = {k: os.environ.get(k) for k in values}
    put(values)
    try:
        yield
    finally:
        put(saved)


_env = environment  # the name tests/model/test_scope_of_validity.py imports


def build_service_env(root: Path) -> ServiceEnv:
    _, home = tiny_delivery(root, persons=1500)
    config = write_config(root / "training.yaml", truth_dir=str(root / "d1_truth"))
    runner = CliRunner()
    with environment(RISKCAST_HOME=str(home), MLFLOW_TRACKING_URI=None, RISKCAST_DATABASE_URL=None):
        result = runner.invoke(build_app(), ["train", "--config", str(config)])
        assert result.exit_code == 0, result.output + repr(result.exception)
        match = re.search(r"model version: recidivism-risk v(\d+)", result.output)
        assert match, result.output
        version = match.group(1)
        from training.tracking import tracking_session

        with tracking_session(f"sqlite:///{(home / 'mlflow.db').resolve()}") as client:
            client.set_registered_model_alias("recidivism-risk", "champion", version)
        done = runner.invoke(build_app(), ["features", "materialize", "--as-of", "2025-06-30"])
        assert done.exit_code == 0, done.output + repr(done.exception)
        tokens: dict[str, str] = {}
        for name, args in {
            "olga": ["--role", "officer", "--region", "AST"],
            "oleg": ["--role", "officer", "--region", "SHY"],
            "ada": ["--role", "auditor"],
            "dan": ["--role", "data_scientist"],
            "root": ["--role", "admin"],
        }.items():
            out = runner.invoke(build_app(), ["users", "add", name, *args])
            assert out.exit_code == 0, out.output + repr(out.exception)
            tokens[name] = re.search(r"token=(\S+)", out.output).group(1)  # type: ignore[union-attr]
    from features.frames.scope import outside_reasons
    from features.online.store import SqlOnlineStore
    from serving.state import load_directory
    from training.tracking import download_risk_model

    directory = load_directory(home).frame
    online = SqlOnlineStore(f"sqlite:///{(home / 'riskcast.sqlite').resolve()}")
    ids = directory["person_id"].to_list()
    vectors = online.get_vectors(ids)
    online.dispose()
    uri = f"sqlite:///{(home / 'mlflow.db').resolve()}"
    scope = download_risk_model("recidivism-risk", version, home=home, uri=uri).scope
    assert scope is not None
    why = dict(zip(vectors["person_id"].to_list(), outside_reasons(vectors, scope), strict=True))
    persons: dict[str, list[str]] = {}
    outside: dict[str, list[str]] = {}
    for pid, region in directory.select("person_id", "region").iter_rows():
        if pid in why:
            (persons if why[pid] is None else outside).setdefault(region, []).append(pid)
    return ServiceEnv(home, version, tokens, persons, outside)


def copy_home(source: Path, target: Path) -> None:
    """Copy a riskcast home that other tests of this worker may hold open: SQLite databases
    through SQLite's online backup (their -wal/-shm files come and go meanwhile), the rest as
    files."""

    def is_sqlite(path: Path) -> bool:
        with path.open("rb") as handle:
            return handle.read(16) == b"SQLite format 3\x00"

    databases = [p for p in source.rglob("*") if p.is_file() and is_sqlite(p)]
    skipped = {p.resolve() for p in databases}

    def ignore(folder: str, names: list[str]) -> set[str]:
        return {
            n
            for n in names
            if (Path(folder) / n).resolve() in skipped or n.endswith(("-wal", "-shm", "-journal"))
        }

    shutil.copytree(source, target, ignore=ignore)
    for database in databases:
        into = target / database.relative_to(source)
        into.parent.mkdir(parents=True, exist_ok=True)
        reader, writer = sqlite3.connect(database), sqlite3.connect(into)
        try:
            reader.backup(writer)
        finally:
            reader.close()
            writer.close()


def settings_for(home: Path, **kw: Any) -> Any:
    from serving.settings import ServingSettings

    return ServingSettings(home=home, database_url=None, mlflow_tracking_uri=None, **kw)


@pytest.fixture(scope="session")
def service_env(tmp_path_factory: pytest.TempPathFactory) -> ServiceEnv:
    return build_service_env(tmp_path_factory.mktemp("service"))


_ = date  # keep the import for callers building their own dates
