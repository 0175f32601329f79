"""What keeps the pages' browser side safe: cookies, same-origin forms, security headers.

- Cookies are HttpOnly and SameSite=Strict, and Secure when the request came over https (behind
  a proxy: ``X-Forwarded-Proto``, which `riskcast serve` trusts from local proxies) or the
  service runs in production mode; a Secure cookie also takes the ``__Host-`` prefix, so that no
  sibling (sub)domain can plant one.
- Forms are only taken from the pages' own origin: a browser's ``Sec-Fetch-Site`` must say
  ``same-origin`` and its ``Origin`` must name this host (a proxy in front must pass the
  ``Host`` header on), or be ``null`` beside ``Sec-Fetch-Site: same-origin`` (what browsers
  send for the pages' own forms under ``Referrer-Policy: no-referrer``). Clients that send
  neither header (not browsers) are left to the CSRF tokens.
- Every page answer carries a Content-Security-Policy without scripts, frames or foreign
  styles (the templates' one ``<style>`` is allowed by its hash), ``X-Frame-Options: DENY``,
  ``nosniff``, ``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import Response
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.settings import ServingSettings

UI_PREFIXES = ("/ui", "/login", "/logout")
SESSION_COOKIE = "riskcast_session"
LOGIN_COOKIE = "riskcast_login"
_STYLE = re.compile(r"<style[^>]*>(.*?)</style>", re.S | re.I)


def is_page(path: str) -> bool:
    """``/ui``, ``/ui/...``, ``/login`` and ``/logout`` (not ``/uifoo``)."""
    return any(path == p or path.startswith(p + "/") for p in UI_PREFIXES)


def is_secure(request: Request, settings: ServingSettings) -> bool:
    return request.url.scheme == "https" or settings.mode == "production"


def cookie_name(request: Request, settings: ServingSettings, base: str) -> str:
    return f"__Host-{base}" if is_secure(request, settings) else base


def read_cookie(request: Request, settings: ServingSettings, base: str) -> str | None:
    return request.cookies.get(cookie_name(request, settings, base))


def set_cookie(
    reply: Response,
    request: Request,
    settings: ServingSettings,
    base: str,
    value: str,
    max_age: int,
) -> None:
    reply.set_cookie(
        cookie_name(request, settings, base),
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=is_secure(request, settings),
    )


def clear_cookie(reply: Response, request: Request, settings: ServingSettings, base: str) -> None:
    reply.delete_cookie(
        cookie_name(request, settings, base),
        path="/",
        httponly=True,
        samesite="strict",
        secure=is_secure(request, settings),
    )


def same_origin(request: Request) -> bool:
    """Whether a form post may come from the pages themselves (see the module's docstring).

    Under ``Referrer-Policy: no-referrer`` a browser sends ``Origin: null`` even for the pages'
    own forms (Fetch standard, "append a request Origin header"), so ``null`` passes only when
    the browser's ``Sec-Fetch-Site`` says ``same-origin``; a ``null`` without it (a sandboxed
    frame elsewhere, or a browser without Fetch Metadata) is refused."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site.lower() != "same-origin":
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    if origin == "null":
        return site is not None
    parts = urlsplit(origin)
    host = request.headers.get("host", "").lower()
    return parts.scheme in ("http", "https") and bool(host) and parts.netloc.lower() == host


def style_hashes(html: str) -> list[str]:
    """CSP source expressions allowing exactly the ``<style>`` elements of ``html``."""
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode("utf-8")).digest()).decode() + "'"
        for s in _STYLE.findall(html)
    ]


def page_policy(trusted_html: str) -> str:
    """The pages' CSP, given a page rendered from the templates alone (no request data)."""
    styles = " ".join(dict.fromkeys(style_hashes(trusted_html))) or "'none'"
    return (
        f"default-src 'none'; style-src {styles}; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    )


def report_policy(report_html: str) -> str:
    """The CSP of a fairness report's own HTML (written by `riskcast audit`): its styles and its
    embedded PNG charts, no scripts, no forms."""
    styles = " ".join(dict.fromkeys(style_hashes(report_html))) or "'none'"
    return (
        f"default-src 'none'; style-src {styles}; img-src data:; form-action 'none'; "
        "base-uri 'none'; frame-ancestors 'none'"
    )


class PageHeaders:
    """Adds the security headers to every page answer (errors and redirects included); an
    answer that sets its own policy (the fairness report) keeps it. Plain ASGI: the API's
    routes pass through untouched."""

    def __init__(self, app: ASGIApp, policy: str) -> None:
        self.app = app
        self.headers = {
            "content-security-policy": policy,
            "x-frame-options": "DENY",
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
            "cross-origin-opener-policy": "same-origin",
            "cache-control": "no-store",
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_page(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
