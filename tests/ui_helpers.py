"""Helpers of the pages' tests: a private copy of the service home, logging in through the login
form, the forms' CSRF tokens, the app's own access log; and of the browser tests (tests/e2e):
Chromium's path and flags, watching pages for server errors and CSP violations, screenshots,
logging in through the browser, reading table rows, `riskcast serve` on a free port."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from serving.access_log import AccessLogEntry
from tests.service_helpers import ServiceEnv, copy_home

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

SESSION = "riskcast_session"


def private_home(
    service_env: ServiceEnv, factory: pytest.TempPathFactory, name: str = "ui"
) -> Path:
    """A copy of the service home: users, sessions, decisions and the access log of these
    tests stay in it (other modules share the original)."""
    copy = factory.mktemp(name) / "home"
    copy_home(service_env.home, copy)
    return copy


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, html[:800]
    return match.group(1)


def hidden_fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))


def login(c: TestClient, token: str) -> Any:
    """Log in through the login page: its form as served (hidden fields included, the login
    CSRF token) with ``token``; the 303."""
    c.cookies.clear()
    form = c.get("/login")
    assert form.status_code == 200, form.text
    fields = {**hidden_fields(form.text), "token": token}
    r = c.post("/login", data=fields, follow_redirects=False)
    assert r.status_code == 303, r.text
    return r


def entries(c: TestClient, **filters: Any) -> list[AccessLogEntry]:
    """The access log of the app behind ``c`` (oldest first)."""
    log = c.app.state.riskcast.access_log  # type: ignore[attr-defined]
    found: list[AccessLogEntry] = log.entries(**filters)
    return found


def last_seq(c: TestClient) -> int:
    found = entries(c)
    return found[-1].seq if found else 0


# ---- the browser tests' helpers (tests/e2e) ------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
TIMEOUT_MS = 15_000


def artifacts(name: str) -> Path:
    """``$RISKCAST_TEST_ARTIFACTS/<name>/`` (default ``tests/artifacts/<name>/``), made."""
    root = os.environ.get("RISKCAST_TEST_ARTIFACTS")
    folder = (Path(root) if root else ROOT / "tests" / "artifacts") / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Browsing:
    """What the browser tests watch on every page they open: answers of 500 or more and the
    Content Security Policy violations Chromium reports (each a failure), the pages opened (the
    last is shot on failure), screenshots into ``shots``, logging in through the login form."""

    server: str
    tokens: dict[str, str]
    shots: Path
    failures: list[str] = field(default_factory=list)
    pages: list[Page] = field(default_factory=list)

    def shot(self, page: Page, name: str) -> None:
        page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)

    def watch(self, page: Page) -> Page:
        self.pages.append(page)
        failures = self.failures
        page.on(
            "response",
            lambda r: failures.append(f"{r.status} {r.url}") if r.status >= 500 else None,
        )
        page.on(
            "console",
            lambda m: (
                failures.append(f"{page.url}: {m.text}")
                if "Content Security Policy" in m.text
                else None
            ),
        )
        return page

    def log_in(self, page: Page, who: str) -> None:
        page.goto(f"{self.server}/login")
        page.fill("input[name=token]", self.tokens[who])
        page.click("button:has-text('Log in')")

    def shoot_failure(self) -> None:
        """The page the test stopped on, as ``failure.png``."""
        if self.pages and not self.pages[-1].is_closed():
            self.shot(self.pages[-1], "failure")


def cells(row: Locator) -> list[str]:
    """A table row's cells as the browser shows them (whitespace collapsed)."""
    return [" ".join(t.split()) for t in row.locator("td").all_inner_texts()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ok(url: str, process: subprocess.Popen[str], log: Path, deadline: float) -> None:
    """Wait until ``url`` answers 200 (fail with the server's log when it exits or is late)."""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.25)
    pytest.fail(f"{url} did not answer 200 in time:\n{log.read_text()}")


@dataclass
class Server:
    """A `riskcast serve` process on a free port: its address, process, log and start time."""

    base: str
    process: subprocess.Popen[str]
    log: Path
    started: float

    def wait_ready(self, seconds: float = 60) -> None:
        deadline = self.started + seconds
        for path in ("/healthz", "/readyz"):
            wait_ok(self.base + path, self.process, self.log, deadline)


@contextmanager
def riskcast_serve(home: Path, log_path: Path) -> Iterator[Server]:
    """`riskcast serve` over ``home`` on a free port (dev mode, the repository's configs, no
    MLflow or database URL from the environment), its output in ``log_path``; stopped after."""
    port = free_port()
    server_env = {
        **os.environ,
        "RISKCAST_HOME": str(home),
        "RISKCAST_CONFIG_DIR": str(ROOT / "configs"),
        "RISKCAST_MODE": "dev",
    }
    for name in ("MLFLOW_TRACKING_URI", "RISKCAST_DATABASE_URL"):
        server_env.pop(name, None)
    riskcast = Path(sys.executable).parent / "riskcast"
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [str(riskcast), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=server_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started = time.monotonic()
        try:
            yield Server(f"http://127.0.0.1:{port}", process, log_path, started)
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
