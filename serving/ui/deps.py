"""The pages' dependencies: the session behind the cookie, the roles a page allows, and forms
(posted from the pages' own origin, carrying the session's CSRF token).

``/login`` exchanges a bearer token for a server-side session (`serving.sessions`): the cookie
holds an opaque random id, never the token, and logout deletes the session. Forms carry the
session's random CSRF token; the login form, which has no session yet, carries one bound to a
short-lived pre-session cookie (`login_csrf`), and every form post must come from the pages'
own origin (`serving.ui.security`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import Depends, HTTPException, Request, status

from serving.api.deps import State
from serving.sessions import Session, SessionStore, store_for
from serving.state import ServiceState
from serving.ui.security import (
    SESSION_COOKIE,
    read_cookie,
    same_origin,
)
from serving.users import Role, User

MAX_FORM_BYTES = 64 * 1024


# ---- sessions -----------------------------------------------------------------------------
def session_store(request: Request, state: ServiceState) -> SessionStore:
    s = state.settings
    return store_for(
        request.app.state,
        state.engine,
        s.token_pepper.get_secret_value(),
        idle=s.ui_session_idle_seconds,
        lifetime=s.ui_session_max_seconds,
    )


def ui_session(request: Request, state: State) -> Session:
    """The live session behind the cookie (401, i.e. back to the login page, without one).
    Sync: it reads the database, so it runs on the thread pool."""
    store = session_store(request, state)
    session = store.lookup(read_cookie(request, state.settings, SESSION_COOKIE))
    if session is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "please log in")
    request.state.ui_user = session.user
    request.state.csrf = session.csrf
    return session


UiSession = Annotated[Session, Depends(ui_session)]


async def ui_user(session: UiSession) -> User:
    return session.user


def ui_require(*roles: Role) -> Callable[[Session], Awaitable[User]]:
    allowed = {r.value for r in roles}

    async def check(session: UiSession) -> User:
        if session.user.role.value not in allowed:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"this page is for {', '.join(sorted(allowed))}; you are {session.user.role.value}",
            )
        return session.user

    return check


UiOfficer = Annotated[User, Depends(ui_require(Role.officer))]
UiAuditor = Annotated[User, Depends(ui_require(Role.auditor, Role.admin))]
UiUser = Annotated[User, Depends(ui_user)]


# ---- forms --------------------------------------------------------------------------------
async def form_fields(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (first value of each field), posted from
    the pages' own origin. A malformed body is a 422 (an HTML page, like every page error)."""
    if not same_origin(request):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "forms are only taken from this site")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "expected a form")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, "form too large")
    try:
        parsed = parse_qs(
            bytes(body).decode("utf-8"),
            keep_blank_values=True,
            max_num_fields=50,
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError) as exc:
        problem = "not UTF-8" if isinstance(exc, UnicodeDecodeError) else str(exc)
        # no `from exc`: the app turns a 400 caused by a ValueError into the API's JSON 422
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"malformed form: {problem}"
        ) from None
    return {k: v[0] for k, v in parsed.items()}


Form = Annotated[dict[str, str], Depends(form_fields)]


def check_csrf(request: Request, form: dict[str, str]) -> None:
    """The form's CSRF token is the session's (random per session; constant-time compare)."""
    expected = getattr(request.state, "csrf", "")
    if not expected or not hmac.compare_digest(form.get("csrf", "").encode(), expected.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the form has expired; reload the page")


def login_csrf(state: ServiceState, nonce: str) -> str:
    """The login form's token: bound to the pre-session cookie's random nonce by the pepper, so
    a page elsewhere can neither read nor make one that matches a browser's cookie."""
    pepper = state.settings.token_pepper.get_secret_value().encode()
    return hmac.new(pepper, b"login|" + nonce.encode(), hashlib.sha256).hexdigest()
