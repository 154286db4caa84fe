"""Opening realtime AI WebSockets to one endpoint, with pre-warm.

Pre-warm: the voice webhook calls `prewarm(call_sid)` while the phone still rings; the
socket is opened in the background (bounded in number) and handed to the call's first
`connect()`, so the first answer does not wait for the provider's handshake. A socket
not claimed within `prewarm_seconds` is closed.

Sockets are `gateway.net.websocket` (websockets' sans-I/O protocol): no background
task per connection, and a send that fits the kernel buffer does not yield, which took
two of the three event-loop steps each caller frame cost on its way to the AI.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import structlog
import trio

from actors import realtime
from actors.message_socket import ConnectFailed, MessageSocket
from gateway.ai.endpoints import RealtimeEndpoint
from gateway.net.websocket import LeanWebSocket
from gateway.net.ws_client import open_connection

log = structlog.get_logger("gateway.ai.connector")


class RealtimeConnector:
    """Opens sockets to one endpoint; pre-warm tasks live in `nursery`."""

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
        self._headers = [(name.decode(), value.decode()) for name, value in endpoint.headers()]
        self._warm: dict[str, LeanWebSocket] = {}
        self._waiting: dict[str, trio.CancelScope] = {}  # each warm socket's wait for its call
        self._warming: set[str] = set()  # calls whose socket is being opened
        self._unwanted: set[str] = set()  # ...and whose call connected without waiting for it
        self.prewarm_claimed = 0
        self.prewarm_duplicates = 0
        self.prewarm_expired = 0
        self.prewarm_refused = 0

    @asynccontextmanager
    async def connect(self, key: str | None = None) -> AsyncIterator[MessageSocket]:
        """A socket: the one pre-warmed for `key` if there is one, else a fresh one."""
        socket = self._warm.pop(key, None) if key is not None else None
        waiting = self._waiting.pop(key, None) if key is not None else None
        if waiting is not None:
            waiting.cancel()  # claimed: its keeper has nothing left to do
        if key in self._warming:
            self._unwanted.add(key)  # too late for this call: closed once it opens
        if socket is not None:
            self.prewarm_claimed += 1
        else:
            socket = await self._open()
        try:
            yield socket
        finally:
            await socket.close()

    def for_call(self, key: str) -> CallConnector:
        return CallConnector(self, key)

    def prewarm(self, key: str) -> None:
        """Start opening a socket for call `key` in the background, if within bounds; a call
        already warm or warming (Twilio retrying its webhook) gets no second socket."""
        if key in self._warm or key in self._warming:
            self.prewarm_duplicates += 1
            return
        if len(self._warm) + len(self._warming) >= self._prewarm_max:
            self.prewarm_refused += 1
            return
        self._warming.add(key)
        self._nursery.start_soon(self._keep_warm, key)

    async def _keep_warm(self, key: str) -> None:
        try:
            socket = await self._open()
        except ConnectFailed as exc:
            log.warning("ai.prewarm_failed", call_sid=key, reason=exc.reason)
            return
        finally:
            self._warming.discard(key)
            unwanted = key in self._unwanted
            self._unwanted.discard(key)
        if unwanted:
            await socket.close()
            return
        with trio.move_on_after(self._prewarm_seconds) as waiting:
            self._warm[key] = socket
            self._waiting[key] = waiting
            await trio.sleep_forever()
        if self._waiting.get(key) is waiting:
            del self._waiting[key]
        if self._warm.pop(key, None) is socket:  # the stream never came
            self.prewarm_expired += 1
            await socket.close()

    async def _open(self) -> LeanWebSocket:
        return await open_connection(
            self.endpoint.url,
            self._headers,
            max_size=realtime.DEFAULT_MAX_MESSAGE_CHARS,
            connect_timeout=self._connect_timeout,
        )


class CallConnector:
    """The `SocketConnector` one call uses: its first connection may be pre-warmed."""

    def __init__(self, parent: RealtimeConnector, key: str) -> None:
        self._parent = parent
        self._key = key

    def connect(self) -> AbstractAsyncContextManager[MessageSocket]:
        return self._parent.connect(self._key)
