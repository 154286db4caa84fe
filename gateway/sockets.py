"""Message-socket adapters: hypercorn's ASGI WebSocket and trio-websocket.

Each maps its library's ways of failing onto `SocketClosed` (and binary frames onto
`RemoteProtocolError`), so actors handle one set of errors, httpcore-style. Both
libraries serialise concurrent sends in call order (hypercorn under a FIFO lock after
framing synchronously, trio-websocket with a StrictFIFOLock), which the downlink writer
relies on.
"""

from __future__ import annotations

import contextlib

import trio
import trio_websocket
import wsproto.utilities
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable

from actors.errors import CloseCode, RemoteProtocolError
from actors.message_socket import SocketClosed

CLOSE_TIMEOUT_SECONDS = 2.0


class ASGIMessageSocket:
    """An accepted ASGI WebSocket (hypercorn) as a message socket."""

    def __init__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        self._receive = receive
        self._send = send
        self._closed = False
        self._close_code: int | None = None

    async def receive(self) -> str:
        if self._closed:
            raise SocketClosed(self._close_code, "closed")
        message = await self._receive()
        if message["type"] == "websocket.receive":
            if message.get("text") is None:
                raise RemoteProtocolError(
                    "binary frame where JSON text is expected", CloseCode.UNSUPPORTED_DATA
                )
            return str(message["text"])
        if message["type"] == "websocket.disconnect":
            self._closed = True
            self._close_code = message.get("code")
            raise SocketClosed(self._close_code, "peer disconnected")
        raise RemoteProtocolError(f"unexpected ASGI message {message['type']!r}", CloseCode.INTERNAL_ERROR)

    async def send(self, message: str) -> None:
        if self._closed:
            raise SocketClosed(self._close_code, "closed")
        await self._send({"type": "websocket.send", "bytes": None, "text": message})

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        self._close_code = code
        await self._send({"type": "websocket.close", "code": code, "reason": _close_reason(reason)})


class TrioWebSocketMessageSocket:
    """A trio-websocket connection as a message socket."""

    def __init__(self, connection: trio_websocket.WebSocketConnection) -> None:
        self._connection = connection

    async def receive(self) -> str:
        try:
            message = await self._connection.get_message()
        except trio_websocket.ConnectionClosed as exc:
            raise _closed(exc) from None
        if not isinstance(message, str):
            raise RemoteProtocolError("binary frame where JSON text is expected", CloseCode.UNSUPPORTED_DATA)
        return message

    async def send(self, message: str) -> None:
        try:
            await self._connection.send_message(message)
        except trio_websocket.ConnectionClosed as exc:
            raise _closed(exc) from None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        # Shielded so a cancelled call still says goodbye; bounded so a peer that stopped
        # reading cannot hold the call. trio-websocket #184: wsproto may raise a
        # LocalProtocolError if a ping crosses our close; the socket is closed either way.
        with trio.move_on_after(CLOSE_TIMEOUT_SECONDS, shield=True):
            with contextlib.suppress(wsproto.utilities.LocalProtocolError):
                await self._connection.aclose(code, _close_reason(reason) or None)


def _close_reason(reason: str) -> str:
    """A close reason must fit in 123 bytes of UTF-8 (RFC 6455 section 5.5)."""
    return reason.encode()[:123].decode("utf-8", errors="ignore")


def _closed(exc: trio_websocket.ConnectionClosed) -> SocketClosed:
    reason = exc.reason
    if reason is None:
        return SocketClosed(None, "closed")
    return SocketClosed(reason.code, reason.reason or reason.name)
