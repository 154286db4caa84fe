"""The trio-websocket message-socket adapter (the local agent's server side).

It maps the library's ways of failing onto `SocketClosed` (and binary frames onto
`RemoteProtocolError`), so actors handle one set of errors, httpcore-style, as with
`gateway.net.websocket`, which carries the media streams and the AI sockets.
trio-websocket serialises concurrent sends in call order (a StrictFIFOLock).
"""

from __future__ import annotations

import contextlib

import trio
import trio_websocket
import wsproto.utilities

from actors.errors import CloseCode, RemoteProtocolError
from actors.message_socket import SocketClosed

CLOSE_TIMEOUT_SECONDS = 2.0


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
