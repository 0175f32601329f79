"""The pages installed into the app: templates, security headers, the HTML error pages, and
the pages' routers (`serving.ui.login`, `serving.ui.officer`, `serving.ui.auditor`).

Every page answer, errors included, is HTML with the security headers; the API's error
handlers (`serving.api.errors`) are wrapped so that a page shows their answer as an error page.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from riskcast.errors import RiskcastError
from serving.settings import ServingSettings
from serving.ui.auditor import router as auditor_pages
from serving.ui.login import router as login
from serving.ui.officer import router as officer_pages
from serving.ui.render import error_page, make_templates
from serving.ui.security import SESSION_COOKIE, PageHeaders, clear_cookie, is_page, page_policy


def install_ui(app: FastAPI, settings: ServingSettings) -> None:
    """Templates, security headers, the HTML error pages of the pages, and the page routes."""
    app.state.templates = make_templates()
    app.state.ui_settings = settings
    trusted = app.state.templates.get_template("base.html").render(user=None, csrf="")
    app.add_middleware(PageHeaders, policy=page_policy(trusted))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not is_page(request.url.path):
            return await http_exception_handler(request, exc)
        if exc.status_code == status.HTTP_401_UNAUTHORIZED:
            reply = RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
            clear_cookie(reply, request, settings, SESSION_COOKIE)
            return reply
        return error_page(request, exc.status_code, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        # a hand-edited page address (e.g. ?capacity=0): an error page, not the API's JSON
        if not is_page(request.url.path):
            return await request_validation_exception_handler(request, exc)
        return error_page(request, 422, list(exc.errors()))

    for kind in (RiskcastError, sa.exc.OperationalError):
        api_handler = app.exception_handlers.get(kind)
        if api_handler is not None:
            app.add_exception_handler(kind, _html_on_pages(api_handler))

    app.include_router(login)
    app.include_router(officer_pages)
    app.include_router(auditor_pages)


def _html_on_pages(api_handler: Callable[..., Any]) -> Callable[..., Awaitable[Response]]:
    """The API's handler (its logging included), its answer shown as an error page on pages."""

    async def handler(request: Request, exc: Exception) -> Response:
        reply = api_handler(request, exc)
        answer: Response = await reply if not isinstance(reply, Response) else reply
        if not is_page(request.url.path):
            return answer
        try:
            detail = json.loads(bytes(answer.body)).get("detail", "")
        except (ValueError, AttributeError):
            detail = "the request failed"
        return error_page(request, answer.status_code, detail)

    return handler
