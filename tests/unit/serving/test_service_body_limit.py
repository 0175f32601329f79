"""Request bodies over ``RISKCAST_MAX_BODY_BYTES`` are refused with 413 before anything reads
or parses them: announced by ``Content-Length`` (the app never reads a byte), streamed without
one, or longer than announced (cut off as soon as they pass the limit), authenticated or not.

An attack on the demo found none of this: an unauthenticated 500 MB body was read in full
(a 401 after 15 s, process memory 0.5 -> 2.3 GB).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from serving.app import create_app
from tests.service_helpers import AsgiClient, ServiceEnv, copy_home, serve, settings_for

LIMIT = 4096
CHUNK = 512
BODY_ROUTES = ["/v1/scores", "/v1/decisions", "/v1/admin/stop", "/v1/admin/users", "/login"]
FORM = b"application/x-www-form-urlencoded"  # the pages' forms (/login): their own limit is larger


@pytest.fixture(scope="module")
def home(service_env: ServiceEnv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("body-limit") / "home"
    copy_home(service_env.home, copy)
    return copy


@pytest.fixture(scope="module")
def c(home: Path) -> Iterator[AsgiClient]:
    with serve(create_app(settings_for(home, max_body_bytes=LIMIT))) as client:
        yield client


@dataclass
class Raw:
    """What a raw ASGI call answered, and how much of the body the app pulled."""

    status: int
    headers: dict[str, str]
    body: bytes
    chunks_read: int
    bytes_read: int

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    c: AsgiClient,
    path: str,
    chunks: list[bytes],
    *,
    content_length: int | None = None,
    token: str | None = None,
) -> Raw:
    """POST ``chunks`` as one body, one ``http.request`` message each (``more_body`` until the
    last), as a server passes on a chunked body; ``Content-Length`` only if given."""
    kind = FORM if path == "/login" else b"application/json"
    headers = [(b"host", b"test"), (b"content-type", kind)]
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }

    async def run(app: FastAPI) -> Raw:
        out = Raw(0, {}, b"", 0, 0)
        pending = list(chunks)

        async def receive() -> dict[str, Any]:
            if not pending:
                return {"type": "http.disconnect"}
            chunk = pending.pop(0)
            out.chunks_read += 1
            out.bytes_read += len(chunk)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                out.status = message["status"]
                out.headers = {k.decode(): v.decode() for k, v in message["headers"]}
            elif message["type"] == "http.response.body":
                out.body += message.get("body", b"")

        await app(scope, receive, send)
        return out

    raw: Raw = c.portal.call(run, c.app)
    return raw


def assert_refused(reply: Raw) -> None:
    assert reply.status == 413, (reply.status, reply.body)
    assert reply.json() == {
        "detail": f"the request body is larger than the limit of {LIMIT} bytes "
        "(RISKCAST_MAX_BODY_BYTES)",
        "error": "BodyTooLarge",
    }
    assert reply.headers["connection"] == "close"  # the rest of the body is never read


def scores_body(env: ServiceEnv, size: int) -> bytes:
    """A valid `POST /v1/scores` body of exactly ``size`` bytes (padded with spaces)."""
    body = json.dumps({"ids": env.persons["AST"][:2], "purpose": "case_review"}).encode()
    assert len(body) <= size
    return body[:-1] + b" " * (size - len(body)) + b"}"


def chunked(body: bytes, size: int = CHUNK) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


@pytest.mark.parametrize("path", [*BODY_ROUTES, "/v1/no-such-route"])
def test_an_announced_body_over_the_limit_is_413_and_never_read(
    c: AsgiClient, service_env: ServiceEnv, path: str
) -> None:
    for token in (None, service_env.tokens["root"]):
        reply = call(c, path, [b"{" * CHUNK] * 20, content_length=LIMIT + 1, token=token)
        assert_refused(reply)
        assert reply.chunks_read == 0


@pytest.mark.parametrize("path", BODY_ROUTES)
def test_a_streamed_body_over_the_limit_is_413_as_soon_as_it_passes_it(
    c: AsgiClient, service_env: ServiceEnv, path: str
) -> None:
    body = b" " * (100 * LIMIT)
    for token in (None, service_env.tokens["olga"], service_env.tokens["root"]):
        for length in (None, 10):  # chunked, or more than Content-Length announced
            reply = call(c, path, chunked(body), content_length=length, token=token)
            assert_refused(reply)
            assert reply.bytes_read == LIMIT + CHUNK  # the chunk that passed it, no more


def test_an_unauthenticated_big_body_is_413_not_401(c: AsgiClient, service_env: ServiceEnv) -> None:
    big = scores_body(service_env, LIMIT + 1)
    assert_refused(call(c, "/v1/scores", [big], content_length=len(big)))
    assert_refused(call(c, "/v1/scores", chunked(big)))
    # a small one still gets its 401
    small = scores_body(service_env, LIMIT)
    assert call(c, "/v1/scores", chunked(small)).status == 401


def test_a_body_at_the_limit_is_served_one_byte_more_is_413(
    c: AsgiClient, service_env: ServiceEnv
) -> None:
    officer = service_env.tokens["olga"]
    for size in (LIMIT - 1, LIMIT):
        body = scores_body(service_env, size)
        for length in (len(body), None):
            reply = call(c, "/v1/scores", chunked(body), content_length=length, token=officer)
            assert reply.status == 200, reply.body
            assert [r["status"] for r in reply.json()["results"]] == ["scored", "scored"]
            assert reply.bytes_read == size
    over = scores_body(service_env, LIMIT + 1)
    for length in (len(over), None):
        assert_refused(call(c, "/v1/scores", chunked(over), content_length=length, token=officer))


def test_the_default_limit_is_one_mebibyte_and_documented(
    home: Path, service_env: ServiceEnv
) -> None:
    app = create_app(settings_for(home))
    with serve(app) as client:
        officer = service_env.tokens["olga"]
        mib = 1024 * 1024
        served = call(client, "/v1/scores", chunked(scores_body(service_env, mib), 65536))
        assert served.status == 401  # read in full, then refused for want of a token
        served = call(
            client, "/v1/scores", chunked(scores_body(service_env, mib), 65536), token=officer
        )
        assert served.status == 200, served.body
        refused = call(client, "/v1/scores", [b" "], content_length=mib + 1, token=officer)
        assert refused.status == 413 and str(mib) in refused.json()["detail"]
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation:
                described = operation["responses"]["413"]["description"]
                assert f"larger than {mib} bytes" in described, (method, path)


def test_refusals_are_counted_in_the_metrics(c: AsgiClient) -> None:
    call(c, "/v1/scores", [b" "], content_length=LIMIT + 1)
    metrics = c.get("/metrics").text
    assert 'riskcast_http_requests_total{method="POST",route="unmatched",status="413"}' in metrics
