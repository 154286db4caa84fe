"""Accepting a server WebSocket on a fresh connection (the media stream).

`read_upgrade` reads the request head, at most `MAX_REQUEST_HEAD_BYTES` of it (431
past that, before any authentication has been possible), and gives it to the protocol
object; bytes after the head are frames and go to the socket's framing layer. The
caller checks the request (the Twilio signature) and then accepts or refuses it.
"""

from __future__ import annotations

import contextlib

from websockets.http11 import Request
from websockets.server import ServerProtocol

from actors.message_socket import SocketClosed
from gateway.net.transport import Transport
from gateway.net.websocket import DEFAULT_MAX_SIZE, LeanWebSocket

MAX_REQUEST_HEAD_BYTES = 16 * 1024  # Twilio's upgrade request is under 2 KiB


class Upgrade:
    """An upgrade request read from a fresh connection, to accept or refuse."""

    def __init__(self, transport: Transport, protocol: ServerProtocol, request: Request, rest: bytes) -> None:
        self.request = request
        self._socket = LeanWebSocket(transport, protocol, initial=rest)
        self._protocol = protocol

    def header(self, name: str) -> list[str]:
        """Every value of header `name` (a header sent twice has two)."""
        return self.request.headers.get_all(name)

    async def accept(self) -> LeanWebSocket | None:
        """Answer 101; the socket, or None if the request was not a valid upgrade (400 sent)."""
        self._protocol.send_response(self._protocol.accept(self.request))
        with contextlib.suppress(SocketClosed):
            await self._socket.flush()
        if self._protocol.handshake_exc is not None or self._socket.closed:
            await self._socket.abort()
            return None
        return self._socket

    async def refuse(self, status: int, text: str) -> None:
        """Answer with an HTTP error instead of the upgrade, then close."""
        self._protocol.send_response(self._protocol.reject(status, text))
        with contextlib.suppress(SocketClosed):
            await self._socket.flush()
        await self._socket.abort()


async def read_upgrade(
    transport: Transport, *, max_size: int = DEFAULT_MAX_SIZE, head: bytes = b""
) -> Upgrade | None:
    """Read the upgrade request from a fresh connection (`head`: its first bytes, already
    read); None if the client went away or sent no valid request head (answered 400, 431)."""
    buffer = head
    while (end := buffer.find(b"\r\n\r\n")) < 0:
        if len(buffer) > MAX_REQUEST_HEAD_BYTES:
            await _answer(transport, "431 Request Header Fields Too Large")
            return None
        data = await transport.receive()
        if not data:
            await transport.aclose()
            return None
        buffer += data
    protocol = ServerProtocol(max_size=max_size)
    protocol.receive_data(buffer[: end + 4])
    request = next((event for event in protocol.events_received() if isinstance(event, Request)), None)
    if request is None:
        await _answer(transport, "400 Bad Request")
        return None
    return Upgrade(transport, protocol, request, buffer[end + 4 :])


async def _answer(transport: Transport, status: str) -> None:
    with contextlib.suppress(OSError):
        await transport.send(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
    await transport.aclose()
