"""One listening port for both planes: media streams are served here, the rest by hypercorn.

Every accepted connection's request line is peeked at (`MSG_PEEK`, nothing consumed).
A `GET /twilio/media` (Twilio's media stream upgrade) is handed to the media endpoint on
the raw socket, where `gateway.net.websocket` serves it with a third of the event-loop
steps hypercorn's ASGI WebSocket path took per frame (ops/bench). Anything else (the
webhooks, health, metrics, the admin API and its WebSocket) goes to hypercorn, which
accepts from a `HandoffListener` instead of the socket itself.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable

import trio

from gateway.net.hypercorn_handoff import HandoffListener
from gateway.net.transport import RawSocketTransport

PEEK_BYTES = 64
PEEK_SECONDS = 10.0
PEEK_RETRY_SECONDS = 0.005
MediaHandler = Callable[[RawSocketTransport, str], Awaitable[None]]


class FrontDoor:
    def __init__(self, listener: socket.socket, media_path: str, media: MediaHandler) -> None:
        self._listener = trio.SocketListener(trio.socket.from_stdlib_socket(listener))
        self._prefixes = (f"GET {media_path} ".encode(), f"GET {media_path}?".encode())
        self._media = media
        self.handoff = HandoffListener()

    async def serve(self, connections: trio.Nursery) -> None:
        """Accept until cancelled; each connection's task runs in `connections`."""
        while True:
            stream = await self._listener.accept()
            connections.start_soon(self._route, stream)

    async def _route(self, stream: trio.SocketStream) -> None:
        with trio.move_on_after(PEEK_SECONDS) as peek:
            head = await _peek_request_line(stream.socket)
        if peek.cancelled_caught or not head:
            await stream.aclose()
        elif head.startswith(self._prefixes):
            client = _peer(stream.socket)
            await self._media(RawSocketTransport.of(stream), client)
        else:
            self.handoff.hand_off(stream)


async def _peek_request_line(sock: trio.socket.SocketType) -> bytes:
    """The first bytes of the request, once there are enough to route on (or the peer left)."""
    while True:
        try:
            head = await sock.recv(PEEK_BYTES, socket.MSG_PEEK)
        except OSError:
            return b""
        if not head or len(head) >= PEEK_BYTES or b"\n" in head:
            return head
        await trio.sleep(PEEK_RETRY_SECONDS)  # MSG_PEEK does not wait for more than is there


def _peer(sock: trio.socket.SocketType) -> str:
    try:
        host, port = sock.getpeername()[:2]
    except OSError:
        return "unknown"
    return f"{host}:{port}"
