"""The pages' HTML: the Jinja2 templates, rendering with the user and CSRF token of the
request, page addresses, and the error page every page error is shown as."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from serving.users import Role, User

TEMPLATES = Path(__file__).parent / "templates"


def make_templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda v: "" if v is None else f"{100 * float(v):.1f}%"
    env.filters["num"] = lambda v: "" if v is None else f"{float(v):+.3f}"
    env.filters["when"] = when
    env.filters["words"] = lambda v: "" if v is None else str(v).replace("_", " ")
    env.filters["strength"] = strength
    return env


def when(value: Any) -> str:
    """A moment for people: minutes in UTC, no microseconds, no "T" (``2025-06-30 14:03 UTC``)."""
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return f"{value:%Y-%m-%d %H:%M} UTC"
    return str(value)


STRONG, MODERATE = 0.5, 0.15
"""Contributions (log-odds) shown to officers as words, not numbers: at least 0.5 (at a 30 %
probability, about +10 percentage points) raises the score strongly, at least 0.15 (about +3)
moderately, less slightly."""


def strength(contribution: float | None) -> str:
    """How much a fact moves the score, in words (officers get no log-odds)."""
    if contribution is None:
        return ""
    size = abs(float(contribution))
    word = "strongly" if size >= STRONG else "moderately" if size >= MODERATE else "slightly"
    return f"raises {word}" if contribution >= 0 else f"lowers {word}"


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    env: Environment = request.app.state.templates
    user = getattr(request.state, "ui_user", None)
    html = env.get_template(name).render(
        user=user, csrf=getattr(request.state, "csrf", ""), **context
    )
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


def page_url(path: str, **params: Any) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")}, doseq=True)
    return f"{path}?{query}" if query else path


def home_for(user: User) -> str:
    if user.role is Role.officer:
        return "/ui/list"
    if user.role in (Role.auditor, Role.admin):
        return "/ui/audit"
    return "/ui/none"


def error_page(request: Request, status_code: int, detail: Any) -> HTMLResponse:
    message = detail if isinstance(detail, str) else _field_errors(detail)
    return render(request, "error.html", status_code, title=f"Error {status_code}", message=message)


def _field_errors(detail: Any) -> str:
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg', '')}"
            for d in detail
            if isinstance(d, dict)
        )
    return str(detail)
