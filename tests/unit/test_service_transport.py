"""Every accepted connection gets TCP_NODELAY, even when uvicorn's workers got the socket."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from serving.transport import NoDelayH11Protocol


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
