"""Opening realtime AI WebSockets with trio-websocket: providers, authentication, pre-warm.

Providers differ in URL, authentication header and dialect, nothing else:

- openai: `OPENAI_BASE_URL` with ws(s) and `/realtime?model=` (as the openai SDK builds
  it); `Authorization: Bearer`; GA.
- azure-openai: `wss://<resource>.openai.azure.com/openai/v1/realtime?model=<deployment>`;
  `api-key`; GA.
- azure-voice-live: `wss://<resource>/voice-live/realtime?api-version=<v>&model=<model>`;
  `api-key`; the Voice Live dialect.
- local: the in-process agent on loopback; `Authorization: Bearer` with a per-process key; GA.

No `OpenAI-Beta` header is ever sent (since 2026-05-12 it gets the session closed).
Credentials live only in headers, never in URLs, so URLs can be logged.

Pre-warm: the voice webhook calls `prewarm(call_sid)` while the phone still rings; the
socket is opened in the background (bounded in number) and handed to the call's first
`connect()`, so the first answer does not wait for the provider's handshake. A socket
not claimed within `prewarm_seconds` is closed.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import structlog
import trio
import trio_websocket

from actors import realtime
from actors.message_socket import ConnectFailed, MessageSocket
from actors.realtime import Dialect
from gateway.config import Secret, Settings, websocket_url
from gateway.sockets import TrioWebSocketMessageSocket

log = structlog.get_logger("gateway.realtime_client")


@dataclass(frozen=True)
class RealtimeEndpoint:
    url: str
    api_key: Secret
    auth_header: str = "Authorization"  # or "api-key" (Azure)
    dialect: Dialect = Dialect.GA

    @classmethod
    def openai(cls, base_url: str, model: str, api_key: Secret) -> RealtimeEndpoint:
        return cls(f"{websocket_url(base_url.rstrip('/'))}/realtime?model={quote(model, safe='')}", api_key)

    @classmethod
    def azure_openai(cls, endpoint: str, deployment: str, api_key: Secret) -> RealtimeEndpoint:
        host = websocket_url(_origin(endpoint))
        return cls(f"{host}/openai/v1/realtime?model={quote(deployment, safe='')}", api_key, "api-key")

    @classmethod
    def azure_voice_live(
        cls, endpoint: str, api_version: str, model: str, api_key: Secret
    ) -> RealtimeEndpoint:
        query = f"api-version={quote(api_version, safe='')}&model={quote(model, safe='')}"
        url = f"{websocket_url(_origin(endpoint))}/voice-live/realtime?{query}"
        return cls(url, api_key, "api-key", Dialect.VOICE_LIVE)

    @classmethod
    def for_provider(cls, settings: Settings) -> RealtimeEndpoint:
        """The endpoint of a cloud provider (the local agent announces its own)."""
        model = settings.ai_model
        if settings.ai_provider == "azure-openai":
            return cls.azure_openai(settings.azure_openai_endpoint, model, settings.azure_openai_api_key)
        if settings.ai_provider == "azure-voice-live":
            return cls.azure_voice_live(
                settings.azure_voice_live_endpoint,
                settings.azure_voice_live_api_version,
                model,
                settings.azure_voice_live_api_key,
            )
        return cls.openai(settings.openai_base_url, model, settings.openai_api_key)

    def headers(self) -> list[tuple[bytes, bytes]]:
        value = self.api_key.reveal()
        if self.auth_header == "Authorization":
            value = "Bearer " + value
        return [(self.auth_header.encode(), value.encode())]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class RealtimeConnector:
    """Opens sockets to one endpoint; background reader tasks live in `nursery`."""

    def __init__(
        self,
        endpoint: RealtimeEndpoint,
        nursery: trio.Nursery,
        *,
        connect_timeout: float = 10.0,
        prewarm_seconds: float = 20.0,
        prewarm_max: int = 100,
    ) -> None:
        self.endpoint = endpoint
        self._nursery = nursery
        self._connect_timeout = connect_timeout
        self._prewarm_seconds = prewarm_seconds
        self._prewarm_max = prewarm_max
        self._ssl = ssl.create_default_context() if endpoint.url.startswith("wss:") else None
        self._warm: dict[str, trio_websocket.WebSocketConnection] = {}
        self._warming = 0
        self.prewarm_claimed = 0
        self.prewarm_expired = 0
        self.prewarm_refused = 0

    @asynccontextmanager
    async def connect(self, key: str | None = None) -> AsyncIterator[MessageSocket]:
        """A socket: the one pre-warmed for `key` if there is one, else a fresh one."""
        connection = self._warm.pop(key, None) if key is not None else None
        if connection is not None:
            self.prewarm_claimed += 1
        else:
            connection = await self._open()
        socket = TrioWebSocketMessageSocket(connection)
        try:
            yield socket
        finally:
            await socket.close()

    def for_call(self, key: str) -> CallConnector:
        return CallConnector(self, key)

    def prewarm(self, key: str) -> None:
        """Start opening a socket for call `key` in the background, if within bounds."""
        if len(self._warm) + self._warming >= self._prewarm_max:
            self.prewarm_refused += 1
            return
        self._warming += 1
        self._nursery.start_soon(self._keep_warm, key)

    async def _keep_warm(self, key: str) -> None:
        try:
            connection = await self._open()
        except ConnectFailed as exc:
            log.warning("ai.prewarm_failed", call_sid=key, reason=exc.reason)
            return
        finally:
            self._warming -= 1
        self._warm[key] = connection
        await trio.sleep(self._prewarm_seconds)
        if self._warm.pop(key, None) is connection:  # the stream never came
            self.prewarm_expired += 1
            await TrioWebSocketMessageSocket(connection).close()

    async def _open(self) -> trio_websocket.WebSocketConnection:
        connection: trio_websocket.WebSocketConnection = await self._nursery.start(self._hold)
        return connection

    async def _hold(self, *, task_status: trio.TaskStatus[trio_websocket.WebSocketConnection]) -> None:
        """Own one connection's background reader, so its failure stays its own.

        trio-websocket #184: a ping crossing our close can make the reader raise; caught
        here, it ends that one socket instead of cancelling the service nursery (and with
        it every call of the process).
        """
        started = False
        failure: ConnectFailed | None = None
        try:
            async with trio.open_nursery() as reader:
                try:
                    connection = await self._connect(reader)
                except ConnectFailed as exc:
                    failure = exc
                else:
                    started = True
                    task_status.started(connection)
        except* trio_websocket.ConnectionRejected as group:  # raised by the reader task too
            failure = failure or _rejected(self.endpoint.url, group.exceptions[0])
        except* Exception as group:
            if started:
                log.error(
                    "ai.connection_reader_failed", url=self.endpoint.url, error=repr(group.exceptions[0])
                )
            failure = failure or ConnectFailed(f"{self.endpoint.url}: {group.exceptions[0]!r}")
        if not started:
            raise failure or ConnectFailed(f"{self.endpoint.url}: closed during the handshake")

    async def _connect(self, reader: trio.Nursery) -> trio_websocket.WebSocketConnection:
        url = self.endpoint.url
        try:
            with trio.fail_after(self._connect_timeout):
                return await trio_websocket.connect_websocket_url(
                    reader,
                    url,
                    ssl_context=self._ssl,
                    extra_headers=self.endpoint.headers(),
                    max_message_size=realtime.DEFAULT_MAX_MESSAGE_CHARS,
                    message_queue_size=64,
                )
        except trio_websocket.ConnectionRejected as exc:
            raise ConnectFailed(
                f"{url} rejected the handshake with HTTP {exc.status_code}", exc.status_code
            ) from None
        except trio.TooSlowError:
            raise ConnectFailed(f"{url} did not answer within {self._connect_timeout:g} s") from None
        except (trio_websocket.HandshakeError, OSError) as exc:
            cause = exc.__cause__ or exc
            raise ConnectFailed(f"{url} unreachable: {type(cause).__name__}: {cause}") from None


def _rejected(url: str, exc: BaseException) -> ConnectFailed:
    status = exc.status_code if isinstance(exc, trio_websocket.ConnectionRejected) else None
    return ConnectFailed(f"{url} rejected the handshake with HTTP {status}", status)


class CallConnector:
    """The `SocketConnector` one call uses: its first connection may be pre-warmed."""

    def __init__(self, parent: RealtimeConnector, key: str) -> None:
        self._parent = parent
        self._key = key

    def connect(self) -> AbstractAsyncContextManager[MessageSocket]:
        return self._parent.connect(self._key)
