"""The pages' sessions: an opaque server-side session (not the API token) in the cookie, ended
at logout, rotated at login, expiring (idle and absolute), ended for revoked users; per-session
CSRF tokens, a CSRF-protected and same-origin login form, and the security headers."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from riskcast.clock import utcnow
from serving.app import create_app
from serving.sessions import ui_sessions
from serving.users import Role, UserStore
from tests.service_helpers import ServiceEnv, settings_for
from tests.ui_helpers import SESSION, csrf_of, login, private_home

PEPPER = "riskcast-dev-pepper-not-for-production"


@pytest.fixture(scope="module")
def home(service_env: ServiceEnv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return private_home(service_env, tmp_path_factory, "sessions")


@pytest.fixture(scope="module")
def c(home: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(home))) as client:
        yield client


def engine_of(c: TestClient) -> sa.Engine:
    return c.app.state.riskcast.engine  # type: ignore[attr-defined, no-any-return]


def rows(c: TestClient) -> list[sa.RowMapping]:
    with engine_of(c).connect() as conn:
        return list(conn.execute(sa.select(ui_sessions)).mappings().all())


def works(c: TestClient, session_id: str) -> bool:
    """Whether a page accepts this session id (a fresh client: nothing else is sent)."""
    other = TestClient(c.app, cookies={SESSION: session_id})
    return bool(other.get("/ui", follow_redirects=False).headers.get("location") != "/login")


def test_the_cookie_is_an_opaque_session_not_the_token(
    c: TestClient, service_env: ServiceEnv
) -> None:
    token = service_env.tokens["olga"]
    r = login(c, token)
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    assert "secure" not in cookie.lower()  # plain http in dev mode
    session_id = c.cookies[SESSION]
    assert token not in cookie and session_id != token and len(session_id) >= 40
    stored = [row for row in rows(c) if row["id_hash"] == _digest(session_id)]
    assert len(stored) == 1 and session_id not in str(dict(stored[0]))  # only its keyed hash
    assert stored[0]["expires_at"] - stored[0]["created_at"] == timedelta(hours=8)
    assert stored[0]["idle_expires_at"] - stored[0]["created_at"] == timedelta(minutes=30)

    # the session id is no API credential, and the API token is no session
    api = c.get("/v1/models/champion", headers={"Authorization": f"Bearer {session_id}"})
    assert api.status_code == 401
    assert not works(c, token)
    assert works(c, session_id)


def test_logout_ends_the_session_on_the_server(c: TestClient, service_env: ServiceEnv) -> None:
    login(c, service_env.tokens["olga"])
    session_id = c.cookies[SESSION]
    page = c.get("/ui/list")
    out = c.post("/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert f'{SESSION}=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    assert not works(c, session_id)  # the old cookie value, replayed
    assert _digest(session_id) not in {row["id_hash"] for row in rows(c)}


def test_every_login_gets_a_new_session_and_csrf_token(
    c: TestClient, service_env: ServiceEnv
) -> None:
    login(c, service_env.tokens["olga"])
    first, first_csrf = c.cookies[SESSION], csrf_of(c.get("/ui/list").text)
    form = c.get("/login")  # logging in again from the same browser
    c.post("/login", data={"token": service_env.tokens["olga"], "csrf": csrf_of(form.text)})
    second, second_csrf = c.cookies[SESSION], csrf_of(c.get("/ui/list").text)
    assert second != first and second_csrf != first_csrf
    assert not works(c, first) and works(c, second)
    stale = c.post("/logout", data={"csrf": first_csrf}, follow_redirects=False)
    assert stale.status_code == 403  # the old session's token does not fit the new one
    login(c, service_env.tokens["oleg"])  # another user's session has its own token
    assert csrf_of(c.get("/ui/list").text) not in (first_csrf, second_csrf)


def test_sessions_expire_idle_and_absolute(c: TestClient, service_env: ServiceEnv) -> None:
    past = utcnow() - timedelta(seconds=1)
    for column in ("idle_expires_at", "expires_at"):
        login(c, service_env.tokens["olga"])
        session_id = c.cookies[SESSION]
        assert works(c, session_id)
        with engine_of(c).begin() as conn:
            conn.execute(
                sa.update(ui_sessions)
                .where(ui_sessions.c.id_hash == _digest(session_id))
                .values({column: past})
            )
        assert not works(c, session_id), column
        assert _digest(session_id) not in {row["id_hash"] for row in rows(c)}


def test_a_revoked_users_sessions_stop_working(c: TestClient, service_env: ServiceEnv) -> None:
    users = UserStore(engine_of(c), PEPPER)
    _, token = users.add("ui-revoked", Role.officer, ["AST"])
    login(c, token)
    session_id = c.cookies[SESSION]
    assert works(c, session_id)
    users.revoke("ui-revoked")
    assert not works(c, session_id)


def test_the_login_form_resists_cross_site_posts(c: TestClient, service_env: ServiceEnv) -> None:
    token = service_env.tokens["olga"]
    c.cookies.clear()
    no_form = c.post("/login", data={"token": token}, follow_redirects=False)
    assert no_form.status_code == 403 and "has expired" in no_form.text
    assert SESSION not in no_form.headers.get("set-cookie", "")
    csrf = csrf_of(c.get("/login").text)
    forged = c.post("/login", data={"token": token, "csrf": "0" * 64}, follow_redirects=False)
    assert forged.status_code == 403 and SESSION not in forged.headers.get("set-cookie", "")
    other_cookie = TestClient(c.app)  # a token from another browser's login form
    other_cookie.get("/login")
    stolen = other_cookie.post(
        "/login", data={"token": token, "csrf": csrf}, follow_redirects=False
    )
    assert stolen.status_code == 403
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "http://testserver", "Sec-Fetch-Site": "cross-site"},
    ):
        csrf = csrf_of(c.get("/login").text)
        r = c.post(
            "/login",
            data={"token": token, "csrf": csrf},
            headers=headers,
            follow_redirects=False,
        )
        assert r.status_code == 403 and r.headers["content-type"].startswith("text/html"), headers
        assert SESSION not in r.headers.get("set-cookie", ""), headers
    for headers in (
        {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
        {"Origin": "null", "Sec-Fetch-Site": "same-origin"},  # a browser under no-referrer
    ):
        csrf = csrf_of(c.get("/login").text)
        ok = c.post(
            "/login", data={"token": token, "csrf": csrf}, headers=headers, follow_redirects=False
        )
        assert ok.status_code == 303 and SESSION in ok.headers["set-cookie"], headers


def test_other_forms_only_come_from_this_site(c: TestClient, service_env: ServiceEnv) -> None:
    login(c, service_env.tokens["olga"])
    csrf = csrf_of(c.get("/ui/list").text)
    r = c.post("/logout", data={"csrf": csrf}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    assert works(c, c.cookies[SESSION])  # still logged in


def test_secure_cookies_over_https_and_in_production(home: Path) -> None:
    with TestClient(create_app(settings_for(home)), base_url="https://testserver") as https:
        form = https.get("/login")
        assert "__Host-riskcast_login=" in form.headers["set-cookie"]
        token = _token_of(https, "olga-https")
        r = https.post(
            "/login", data={"token": token, "csrf": csrf_of(form.text)}, follow_redirects=False
        )
        assert r.status_code == 303, r.text
        cookie = next(h for h in r.headers.get_list("set-cookie") if "riskcast_session" in h)
        assert cookie.startswith("__Host-riskcast_session=") and "Secure" in cookie
        assert "Path=/" in cookie and "Domain" not in cookie
        assert https.get("/ui/list").status_code == 200  # the __Host- cookie is the session
    # production mode: Secure (and __Host-) even when a proxy forwards plain http
    from starlette.requests import Request

    from serving.ui.security import cookie_name, is_secure

    plain = Request({"type": "http", "scheme": "http", "path": "/login", "headers": []})
    production: Any = SimpleNamespace(mode="production")  # all the cookie rules read
    assert is_secure(plain, production) and not is_secure(plain, settings_for(home))
    assert cookie_name(plain, production, "riskcast_session") == "__Host-riskcast_session"


def test_pages_carry_the_security_headers(c: TestClient, service_env: ServiceEnv) -> None:
    c.cookies.clear()
    answers = [c.get("/login"), c.get("/ui/list", follow_redirects=False), c.get("/ui/nowhere")]
    login(c, service_env.tokens["olga"])
    page = c.get("/ui/list")
    answers += [page, c.get("/ui/list", params={"capacity": 0})]
    for r in answers:
        policy = r.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
        assert "script-src" not in policy and "unsafe-inline" not in policy
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["cache-control"] == "no-store"
    styles = re.findall(r"<style>(.*?)</style>", page.text, re.S)
    assert len(styles) == 1 and ' style="' not in page.text  # no inline style attributes
    digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in page.headers["content-security-policy"]
    assert "content-security-policy" not in c.get("/healthz").headers  # the API is not a page


def _digest(session_id: str) -> str:
    import hmac

    return hmac.new(PEPPER.encode(), b"session|" + session_id.encode(), hashlib.sha256).hexdigest()


def _token_of(c: TestClient, name: str) -> str:
    users = UserStore(c.app.state.riskcast.engine, PEPPER)  # type: ignore[attr-defined]
    return users.add(name, Role.officer, ["AST"])[1]
