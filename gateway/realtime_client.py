"""Opening the realtime AI WebSocket (OpenAI GA, or the local agent) with trio-websocket.

The URL is built the way the openai SDK builds it: the API base URL with its scheme
turned into ws/wss, then `/realtime?model=...`. Authentication is `Authorization: Bearer`
and nothing else: no `OpenAI-Beta` header, which since 2026-05-12 gets a session closed
with `beta_api_shape_disabled`. Credentials live only in the headers, never in the URL,
so the URL can be logged.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import quote

import trio
import trio_websocket

from actors import realtime
from actors.message_socket import ConnectFailed, MessageSocket
from gateway.config import Secret, websocket_url
from gateway.sockets import TrioWebSocketMessageSocket


@dataclass(frozen=True)
class RealtimeEndpoint:
    url: str
    api_key: Secret

    @classmethod
    def openai(cls, base_url: str, model: str, api_key: Secret) -> RealtimeEndpoint:
        return cls(f"{websocket_url(base_url.rstrip('/'))}/realtime?model={quote(model, safe='')}", api_key)

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"Authorization", b"Bearer " + self.api_key.reveal().encode())]


class RealtimeConnector:
    """A `SocketConnector` for one realtime endpoint; each `connect()` is a fresh session."""

    def __init__(self, endpoint: RealtimeEndpoint, connect_timeout: float) -> None:
        self.endpoint = endpoint
        self._connect_timeout = connect_timeout
        self._ssl = ssl.create_default_context() if endpoint.url.startswith("wss:") else None

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[MessageSocket]:
        opened = False
        try:
            async with trio_websocket.open_websocket_url(
                self.endpoint.url,
                ssl_context=self._ssl,
                extra_headers=self.endpoint.headers(),
                connect_timeout=self._connect_timeout,
                disconnect_timeout=2,
                max_message_size=realtime.DEFAULT_MAX_MESSAGE_CHARS,
                message_queue_size=64,
            ) as connection:
                opened = True
                yield TrioWebSocketMessageSocket(connection)
        except trio_websocket.ConnectionRejected as exc:
            if opened:
                raise
            raise ConnectFailed(
                f"{self.endpoint.url} rejected the handshake with HTTP {exc.status_code}"
            ) from None
        except trio_websocket.DisconnectionTimeout:
            if not opened:
                raise
        except (trio_websocket.HandshakeError, OSError, trio.TooSlowError) as exc:
            if opened:
                raise
            cause = exc.__cause__ or exc
            raise ConnectFailed(f"{self.endpoint.url} unreachable: {type(cause).__name__}: {cause}") from None
