"""Helpers of the pages' tests: a private copy of the service home, logging in through the login
form, the forms' CSRF tokens, the app's own access log."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serving.access_log import AccessLogEntry
from tests.service_helpers import ServiceEnv, copy_home

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
