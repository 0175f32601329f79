"""Every accepted connection gets TCP_NODELAY, even when uvicorn's workers got the socket; a body
too large is refused through the real server at once."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from serving.app import create_app
from serving.transport import NoDelayH11Protocol
from tests.service_helpers import settings_for


class _Transport(asyncio.Transport):
    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        info = {
            "socket": self.sock,
            "sockname": self.sock.getsockname(),
            "peername": self.sock.getpeername(),
        }
        return info.get(name, default)


async def _app(scope: Any, receive: Any, send: Any) -> None:  # never called
    raise AssertionError("no request is made")


def test_nagle_is_turned_off_on_accepted_connections() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    try:
        # a plain accepted socket has Nagle on (asyncio turns it off only for sockets it knows)
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        config = uvicorn.Config(app=_app)
        config.load()

        async def connect() -> None:
            protocol = NoDelayH11Protocol(config=config, server_state=ServerState(), app_state={})
            protocol.connection_made(_Transport(accepted))

        asyncio.run(connect())
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        for s in (client, accepted, listener):
            s.close()


def test_a_huge_announced_body_is_refused_at_once_and_the_connection_closed(
    tmp_path: Path,
) -> None:
    """The attack on the demo, through uvicorn with this protocol: 500 MB announced, nothing
    authenticated. It was read in full (15 s, +1.8 GB) for a 401; now the 413 comes before a
    byte of the body is read, and the connection is closed rather than drained."""
    app = create_app(settings_for(tmp_path / "home"))  # an empty home: the limit needs no model
    listener = socket.create_server(("127.0.0.1", 0))
    config = uvicorn.Config(app=app, http=NoDelayH11Protocol, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        with socket.create_connection(listener.getsockname(), timeout=10) as client:
            client.sendall(
                b"POST /v1/scores HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                b"Content-Length: 524288000\r\n\r\n" + b"[" * 65536
            )
            started = time.monotonic()
            answer = b""
            while chunk := client.recv(65536):  # until the server closes the connection
                answer += chunk
            elapsed = time.monotonic() - started
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413 "), answer
        assert b"connection: close" in head.lower()
        assert json.loads(body)["error"] == "BodyTooLarge"
        assert elapsed < 5
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()
