"""`riskcast serve` with a database it cannot reach stops with one line (a `StoreError` the
command root prints as ``error: ...``) before uvicorn starts, not with a startup traceback;
a ``postgres://`` URL gets the URL to write instead."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from riskcast.errors import StoreError
from serving.cli import build_app


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+psycopg://u:secret@127.0.0.1:1/nowhere", "cannot reach the service database"),
        ("postgres://u:secret@127.0.0.1:1/nowhere", "write 'postgresql+psycopg://u:***@"),
    ],
)
def test_serve_refuses_an_unusable_database_in_one_line(
    url: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    def never(*_: object, **__: object) -> None:
        raise AssertionError("uvicorn must not start")

    monkeypatch.setattr(uvicorn, "run", never)
    env = {"RISKCAST_HOME": str(tmp_path), "RISKCAST_DATABASE_URL": url}
    result = CliRunner().invoke(build_app(), ["serve"], env=env)
    assert isinstance(result.exception, StoreError), result.output
    message = str(result.exception)
    assert expected in message
    assert "\n" not in message and "secret" not in message
