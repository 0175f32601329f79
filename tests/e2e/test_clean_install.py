"""The Docker image's install and start commands, exercised without a Docker engine.

The test reads the Dockerfile, checks the properties the image relies on, then performs the
same dependency install (from the lock file, offline from uv's cache that `make` filled), a
non-editable install of the source, and runs the image's default command.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
RUNTIME_LOCK = "requirements-runtime.lock"  # the image's: no test or lint tools


def _instructions() -> list[tuple[str, str]]:
    lines = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ").splitlines()
    out = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text("utf-8").splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, _, version = line.partition("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def test_runtime_lock_is_the_development_lock_without_the_tools() -> None:
    """The image runs exactly the versions the tests ran with (`make lock` writes both)."""
    runtime, development = _pins(ROOT / RUNTIME_LOCK), _pins(ROOT / "requirements.lock")
    assert runtime and {n: development.get(n) for n in runtime} == runtime
    assert not {"pytest", "mypy", "ruff", "playwright", "schemathesis"} & set(runtime)


def test_dockerfile_installs_dependencies_before_source_and_drops_root() -> None:
    steps = _instructions()
    copies = [i for i, (k, _) in enumerate(steps) if k == "COPY"]
    lock_copy = next(i for i in copies if RUNTIME_LOCK in steps[i][1])
    source_copies = [i for i in copies if re.search(r"\bfeatures\b", steps[i][1])]
    assert source_copies and lock_copy < min(source_copies)
    sync = next(i for i, (k, v) in enumerate(steps) if k == "RUN" and RUNTIME_LOCK in v)
    assert lock_copy < sync < min(source_copies)
    users = [v for k, v in steps if k == "USER"]
    assert users and users[-1] not in {"root", "0"}
    assert steps[-1][0] == "CMD"


def _default_command() -> list[str]:
    cmd = next(v for k, v in reversed(_instructions()) if k == "CMD")
    parsed = json.loads(cmd) if cmd.startswith("[") else shlex.split(cmd)
    assert isinstance(parsed, list)
    return [str(p) for p in parsed]


def test_lock_installs_offline_and_default_command_runs(tmp_path: Path) -> None:
    uv = Path(sys.executable).parent / "uv"
    if not uv.exists():
        pytest.fail("uv is not in the test environment; run the suite through `make test`")
    env_dir = tmp_path / "image-venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    env = {**os.environ, "UV_OFFLINE": "1"}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run(
        [str(uv), "pip", "sync", "--python", str(python), "--quiet", RUNTIME_LOCK],
        cwd=ROOT,
        env=env,
        check=True,
    )
    # like the image's `COPY` steps: only what the Dockerfile copies, away from the repository
    app = tmp_path / "app"
    app.mkdir()
    for step, args in _instructions():
        if step != "COPY":
            continue
        *sources, _dest = args.split()
        for source in sources:
            origin = ROOT / source
            if origin.is_dir():
                shutil.copytree(origin, app / source, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(origin, app / source)
    subprocess.run(
        [str(uv), "pip", "install", "--python", str(python), "--quiet", "--no-deps", "."],
        cwd=app,
        env=env,
        check=True,
    )
    # the register simulator is a development tool: not in the image, and it says so
    site = subprocess.run(
        [
            str(python),
            "-c",
            "import features, pathlib; print(pathlib.Path(features.__file__).parent)",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert not (Path(site.stdout.strip()) / "simulator").exists()
    simulate = subprocess.run(
        [str(env_dir / "bin" / "riskcast"), "simulate", "--out", str(tmp_path / "d")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert simulate.returncode != 0
    assert "development tool" in simulate.stdout + simulate.stderr
    command = _default_command()
    assert command[:2] == ["riskcast", "serve"]
    port = _free_port()
    command = (
        [*command[:-1], str(port)] if command[-2] == "--port" else [*command, "--port", str(port)]
    )
    home = tmp_path / "home"
    server = subprocess.Popen(
        [str(env_dir / "bin" / command[0]), *command[1:]],
        cwd=tmp_path,  # not the repository: the installed package must stand alone
        env={**env, "RISKCAST_HOME": str(home), "RISKCAST_CONFIG_DIR": str(app / "configs")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        health = _poll(f"http://127.0.0.1:{port}/healthz", server, seconds=90)
        assert health["status"] == "ok" and health["model_version"] is None
        # no champion in a fresh home: up, but not ready, with a clear reason
        with pytest.raises(urllib.error.HTTPError) as not_ready:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert not_ready.value.code == 503
        assert "champion" in not_ready.value.read().decode()
        # the pages' templates are part of the installed package, not only of the repository
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as page:
            assert page.status == 200
            assert "<form" in page.read().decode().lower()
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _poll(url: str, server: subprocess.Popen[str], *, seconds: float) -> object:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            output = server.stdout.read() if server.stdout else ""
            pytest.fail(f"the server exited with {server.returncode}: {output}")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                return json.loads(reply.read())
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.3)
    pytest.fail(f"{url} did not answer within {seconds} s")
