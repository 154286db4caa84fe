"""One listening port for both planes: media streams are served here, the rest by hypercorn.

Every accepted connection's first bytes are read (waiting on readability, never
polling) until its request line is in. A `GET /twilio/media` (Twilio's media stream
upgrade) goes to the media endpoint on the raw socket, where `gateway.net.websocket`
serves it with a third of the event-loop steps hypercorn's ASGI WebSocket path took per
frame (ops/bench); anything else (the webhooks, health, metrics, the admin API and its
WebSocket) goes to hypercorn, which reads the same bytes again through a `ReplayStream`.

The door is a barrier and a budget: whatever one connection raises is logged and ends
that connection only; at most `max_connections` are open at once and at most
`max_pending_per_peer` from one address are still sending their request line (0 turns
that limit off: behind a proxy every connection has the proxy's address); `accept`
survives running out of file descriptors.
"""

from __future__ import annotations

import errno
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
import trio

from actors.barrier import contain, describe
from gateway.net.hypercorn_handoff import HandoffListener, ReplayStream
from gateway.net.transport import RawSocketTransport

REQUEST_LINE_SECONDS = 10.0
MAX_REQUEST_LINE_BYTES = 8192
ACCEPT_RETRY_SECONDS = 0.1
REFUSAL_LOG_SECONDS = 5.0
# The kernel ran out of something; another accept soon will likely work.
_ACCEPT_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
MediaHandler = Callable[[RawSocketTransport, str, bytes], Awaitable[None]]

log = structlog.get_logger("gateway.net.front_door")


@dataclass(frozen=True, slots=True)
class DoorLimits:
    max_connections: int = 4096
    max_pending_per_peer: int = 256


class FrontDoor:
    def __init__(
        self, listener: trio.SocketListener, media_path: str, media: MediaHandler, limits: DoorLimits
    ) -> None:
        self._listener = listener
        self._prefixes = (f"GET {media_path} ".encode(), f"GET {media_path}?".encode())
        self._media = media
        self._limits = limits
        self.handoff = HandoffListener()
        self.open = 0
        self._pending: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self._refusals_logged_at = -REFUSAL_LOG_SECONDS

    async def serve(self, connections: trio.Nursery) -> None:
        """Accept until cancelled; each connection's task runs in `connections`."""
        while True:
            try:
                stream = await self._listener.accept()
            except OSError as exc:
                if exc.errno not in _ACCEPT_RESOURCE_ERRORS:
                    raise
                log.warning("front_door.accept_failed", error=describe(exc), open_connections=self.open)
                await trio.sleep(ACCEPT_RETRY_SECONDS)
                continue
            if self.open >= self._limits.max_connections:
                self._refuse("too_many_connections")
                await _abort(stream)
                continue
            self.open += 1
            connections.start_soon(self._connection, stream)

    async def _connection(self, stream: trio.SocketStream) -> None:
        peer = _peer(stream.socket)
        handed: list[bool] = []

        async def route() -> None:
            handed.append(await self._route(stream, peer))

        def crashed(crash: Exception) -> None:
            log.exception("connection.crashed", client=peer, error=describe(crash), exc_info=crash)

        try:
            await contain(route, crashed)
        finally:
            if handed != [True]:  # hypercorn did not take it: it ends here
                self.open -= 1
                await _abort(stream)

    async def _route(self, stream: trio.SocketStream, peer: str) -> bool:
        """Serve a media stream, or hand the connection to hypercorn (True)."""
        head = await self._request_line(stream, peer.rpartition(":")[0])
        if not head:
            return False
        if head.startswith(self._prefixes):
            transport = RawSocketTransport.of(stream)
            try:
                await self._media(transport, peer, head)
            finally:
                await transport.aclose()  # idempotent; closes what a failing handler left open
            return False
        return self.handoff.hand_off(ReplayStream(stream, head, self._closed))

    async def _request_line(self, stream: trio.SocketStream, host: str) -> bytes:
        budget = self._limits.max_pending_per_peer
        if budget and self._pending[host] >= budget:
            self._refuse("too_many_pending_from_peer")
            return b""
        self._pending[host] += 1
        try:
            with trio.move_on_after(REQUEST_LINE_SECONDS):
                return await _read_request_line(stream)
            return b""
        finally:
            self._pending[host] -= 1
            if not self._pending[host]:
                del self._pending[host]

    def _closed(self) -> None:
        """A connection hypercorn served has closed."""
        self.open -= 1

    def _refuse(self, reason: str) -> None:
        self.refused[reason] += 1
        now = trio.current_time()
        if now - self._refusals_logged_at >= REFUSAL_LOG_SECONDS:
            self._refusals_logged_at = now
            log.warning(
                "front_door.refused", reason=reason, refused=dict(self.refused), open_connections=self.open
            )


async def _read_request_line(stream: trio.SocketStream) -> bytes:
    """The bytes received up to and including the request line's end (b"" if the peer left
    or sent more than `MAX_REQUEST_LINE_BYTES` without one)."""
    head = b""
    while b"\n" not in head:
        if len(head) > MAX_REQUEST_LINE_BYTES:
            return b""
        try:
            data = await stream.receive_some(4096)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return b""
        if not data:
            return b""
        head += data
    return head


async def _abort(stream: trio.SocketStream) -> None:
    if stream.socket.fileno() >= 0:
        with trio.move_on_after(1, shield=True):
            await stream.aclose()


def _peer(sock: trio.socket.SocketType) -> str:
    try:
        host, port = sock.getpeername()[:2]
    except OSError:
        return "unknown"
    return f"{host}:{port}"
