"""Server-rendered pages (Jinja2, no JavaScript) behind the same bearer tokens.

``/login`` takes a token and keeps it in an HttpOnly, SameSite=Strict cookie; forms that change
something also carry a CSRF token derived from it. Officers get ``/ui/list`` and
``/ui/person/{id}`` (every read of person data goes through the access log with the purpose
chosen on the page, pre-selected from ``RISKCAST_UI_PURPOSE``); auditors (and admins) get
``/ui/audit``. The pages call the same functions as the API, so rules and logging are shared.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, status
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving.auth import State
from serving.settings import ServingSettings
from serving.state import ServiceState
from serving.users import Role, User

COOKIE = "riskcast_token"
TEMPLATES = Path(__file__).parent / "templates"
MAX_FORM_BYTES = 64 * 1024
UI_PREFIXES = ("/ui", "/login", "/logout")

router = APIRouter(include_in_schema=False)


def make_templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda v: "" if v is None else f"{100 * float(v):.1f}%"
    env.filters["num"] = lambda v: "" if v is None else f"{float(v):+.3f}"
    return env


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    env: Environment = request.app.state.templates
    user = getattr(request.state, "ui_user", None)
    html = env.get_template(name).render(
        user=user, csrf=getattr(request.state, "csrf", ""), **context
    )
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


def csrf_token(state: ServiceState, token: str) -> str:
    pepper = state.settings.token_pepper.get_secret_value().encode()
    return hmac.new(pepper, b"csrf|" + token.encode(), hashlib.sha256).hexdigest()[:40]


def ui_user(request: Request, state: State) -> User:
    """The user behind the login cookie (401, i.e. back to the login page, without one)."""
    token = request.cookies.get(COOKIE)
    user = state.users.authenticate(token) if token else None
    if user is None or token is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "please log in")
    request.state.ui_user = user
    request.state.csrf = csrf_token(state, token)
    return user


def ui_require(*roles: Role) -> Callable[[User], User]:
    allowed = {r.value for r in roles}

    def check(user: Annotated[User, Depends(ui_user)]) -> User:
        if user.role.value not in allowed:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"this page is for {', '.join(sorted(allowed))}; you are {user.role.value}",
            )
        return user

    return check


UiOfficer = Annotated[User, Depends(ui_require(Role.officer))]
UiAuditor = Annotated[User, Depends(ui_require(Role.auditor, Role.admin))]
UiUser = Annotated[User, Depends(ui_user)]


async def form_fields(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (first value of each field)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "expected a form")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, "form too large")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"malformed form: {exc}") from exc
    return {k: v[0] for k, v in parsed.items()}


Form = Annotated[dict[str, str], Depends(form_fields)]


def check_csrf(request: Request, form: dict[str, str]) -> None:
    expected = getattr(request.state, "csrf", "")
    if not expected or not hmac.compare_digest(form.get("csrf", ""), expected):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the form has expired; reload the page")


def page_url(path: str, **params: Any) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")}, doseq=True)
    return f"{path}?{query}" if query else path


def home_for(user: User) -> str:
    if user.role is Role.officer:
        return "/ui/list"
    if user.role in (Role.auditor, Role.admin):
        return "/ui/audit"
    return "/ui/none"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, error: str | None = None) -> HTMLResponse:
    return render(request, "login.html", error=error)


@router.post("/login")
def login(request: Request, state: State, form: Form) -> Response:
    token = form.get("token", "").strip()
    user = state.users.authenticate(token) if token else None
    if user is None:
        return render(request, "login.html", 401, error="unknown or revoked token")
    reply = RedirectResponse(home_for(user), status.HTTP_303_SEE_OTHER)
    reply.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=state.settings.mode == "production",
        max_age=8 * 3600,
        path="/",
    )
    return reply


@router.post("/logout")
def logout(request: Request, user: UiUser, form: Form) -> Response:
    check_csrf(request, form)
    reply = RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    reply.delete_cookie(COOKIE, path="/")
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


def install_ui(app: FastAPI, settings: ServingSettings) -> None:
    """Templates, the HTML error pages of ``/ui`` and ``/login``, and the page routes."""
    from serving.ui_pages import router as pages

    app.state.templates = make_templates()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not request.url.path.startswith(UI_PREFIXES):
            return await http_exception_handler(request, exc)
        if exc.status_code == status.HTTP_401_UNAUTHORIZED:
            reply = RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
            reply.delete_cookie(COOKIE, path="/")
            return reply
        detail = exc.detail if isinstance(exc.detail, str) else _field_errors(exc.detail)
        return render(
            request, "error.html", exc.status_code, title=f"Error {exc.status_code}", message=detail
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        # a hand-edited page address (e.g. ?capacity=0): an error page, not the API's JSON
        if not request.url.path.startswith(UI_PREFIXES):
            return await request_validation_exception_handler(request, exc)
        return render(
            request,
            "error.html",
            422,
            title="Error 422",
            message=_field_errors(list(exc.errors())),
        )

    app.include_router(router)
    app.include_router(pages)


def _field_errors(detail: Any) -> str:
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg', '')}"
            for d in detail
            if isinstance(d, dict)
        )
    return str(detail)
