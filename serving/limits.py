"""A limit on the size of request bodies, enforced before anything reads or parses them.

Why a pure ASGI middleware: FastAPI reads a whole JSON body into memory and parses it before it
resolves any dependency, so neither authentication nor validation can refuse a huge body in
time (an unauthenticated 500 MB body was read in full, 15 s and 1.8 GB of memory, to answer
401). The middleware answers 413 at once when ``Content-Length`` announces too much, and
otherwise wraps ``receive`` and counts: a chunked body (no ``Content-Length``) or one longer
than announced is cut off as soon as it passes the limit. It never buffers the body itself; the
server's flow control keeps at most a few chunks in memory meanwhile.

The 413 closes the connection (``Connection: close``): the rest of the body was never read, and
the server would otherwise go on reading it to reach the next request.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from riskcast.errors import InputError


class BodyTooLarge(InputError):
    """A request body is larger than ``RISKCAST_MAX_BODY_BYTES`` (HTTP 413)."""

    http_status = 413


def too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(
        f"the request body is larger than the limit of {limit} bytes (RISKCAST_MAX_BODY_BYTES)"
    )


def announced_length(scope: Scope) -> int | None:
    """The largest ``Content-Length`` the request announces (None: none, or not a number;
    the HTTP server refuses malformed ones itself, and counting still applies)."""
    lengths = [
        value for name, value in scope.get("headers", []) if name.lower() == b"content-length"
    ]
    digits = [v.strip() for v in lengths if v.strip().isdigit()]
    # more than 18 digits is more than any limit (and int() refuses over 4,300 of them)
    numbers = [int(d) if len(d) <= 18 else 10**18 for d in digits]
    return max(numbers) if numbers else None


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413, before the app reads or parses them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        announced = announced_length(scope)
        if announced is not None and announced > self.max_bytes:
            await self._refuse(send)  # the app is not called: nothing reads the body
            return

        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise too_large(self.max_bytes)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                # whatever the app makes of the cut-off body (FastAPI: a 400) is not sent;
                # the 413 below is
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded or started:
                raise
        if exceeded and not started:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        error = too_large(self.max_bytes)
        body = json.dumps({"detail": str(error), "error": type(error).__name__}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": error.http_status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
