"""Logging in and out of the pages: a bearer token is exchanged for a server-side session
(`serving.sessions`) through a form bound to a pre-session cookie; logout ends it on the server.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from serving.api.deps import State
from serving.state import ServiceState
from serving.ui.deps import Form, UiSession, UiUser, check_csrf, login_csrf, session_store
from serving.ui.render import home_for, render
from serving.ui.security import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    clear_cookie,
    read_cookie,
    set_cookie,
)

LOGIN_FORM_SECONDS = 3600  # how long a login form (its pre-session cookie) stays usable
router = APIRouter(include_in_schema=False)


def login_form(
    request: Request, state: ServiceState, status_code: int = 200, error: str | None = None
) -> HTMLResponse:
    """The login page, with a pre-session nonce cookie (kept if the browser has one) and the
    form's token bound to it."""
    nonce = read_cookie(request, state.settings, LOGIN_COOKIE)
    if not nonce or len(nonce) > 64:
        nonce = secrets.token_urlsafe(24)
    request.state.csrf = login_csrf(state, nonce)
    reply = render(request, "login.html", status_code, error=error)
    set_cookie(reply, request, state.settings, LOGIN_COOKIE, nonce, LOGIN_FORM_SECONDS)
    return reply


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, state: State) -> HTMLResponse:
    return login_form(request, state)


@router.post("/login")
def login(request: Request, state: State, form: Form) -> Response:
    """A new session (a new id: any session this browser had is ended first) for the holder
    of a valid token, if the form came from this site's login page."""
    nonce = read_cookie(request, state.settings, LOGIN_COOKIE)
    sent = form.get("csrf", "").encode()
    if not nonce or not hmac.compare_digest(sent, login_csrf(state, nonce).encode()):
        return login_form(request, state, 403, "the login form has expired; please try again")
    token = form.get("token", "").strip()
    user = state.users.authenticate(token) if token else None
    if user is None:
        return login_form(request, state, 401, "unknown or revoked token")
    store = session_store(request, state)
    store.end(read_cookie(request, state.settings, SESSION_COOKIE))
    session_id, _ = store.create(user)
    reply = RedirectResponse(home_for(user), status.HTTP_303_SEE_OTHER)
    set_cookie(
        reply,
        request,
        state.settings,
        SESSION_COOKIE,
        session_id,
        state.settings.ui_session_max_seconds,
    )
    clear_cookie(reply, request, state.settings, LOGIN_COOKIE)
    return reply


@router.post("/logout")
def logout(request: Request, state: State, session: UiSession, form: Form) -> Response:
    """Ends the session on the server (its id no longer works anywhere) and clears the cookie."""
    check_csrf(request, form)
    session_store(request, state).end_digest(session.id_hash)
    reply = RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    clear_cookie(reply, request, state.settings, SESSION_COOKIE)
    return reply


@router.get("/ui")
def ui_home(user: UiUser) -> Response:
    return RedirectResponse(home_for(user), status.HTTP_303_SEE_OTHER)


@router.get("/ui/none", response_class=HTMLResponse)
def no_pages(request: Request, user: UiUser) -> HTMLResponse:
    return render(
        request,
        "error.html",
        status_code=200,
        title="No pages for your role",
        message="Data scientists use the API (GET /v1/models/champion) and MLflow.",
    )
