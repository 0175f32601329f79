"""uvicorn's HTTP protocol with Nagle's algorithm off on every connection.

Why: with ``--workers`` > 1 uvicorn hands the listening socket to its worker processes, and
asyncio then does not set TCP_NODELAY on the accepted connections (it only does for sockets it
recognises as TCP). A response written in two parts then waits for the client's delayed ACK:
about 40 ms on every request (measured: /healthz took 45 ms with 2 workers, 0.5 ms with 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):  # not a TCP socket after all: nothing to do
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
