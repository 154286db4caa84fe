"""One listening port for both planes: media streams are served here, the rest by hypercorn.

Every accepted connection's request line is peeked at (`MSG_PEEK`, nothing consumed).
A `GET /twilio/media` (Twilio's media stream upgrade) is handed to the media endpoint on
the raw socket, where `gateway.net.websocket` serves it with a third of the event-loop
steps hypercorn's ASGI WebSocket path took per frame (ops/bench). Anything else (the
webhooks, health, metrics, the admin API and its WebSocket) goes to hypercorn, which
accepts from a `HandoffListener` instead of the socket itself.

`serve_hypercorn` is hypercorn's trio `worker_serve` (0.18) reduced to one listener of
ours: lifespan, the TCP server per connection, graceful shutdown on `shutdown_trigger`.
"""

from __future__ import annotations

import math
import socket
from collections.abc import Awaitable, Callable
from functools import partial

import trio
from hypercorn.config import Config
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ASGIFramework, ConnectionState, LifespanState
from hypercorn.utils import ShutdownError, raise_shutdown, wrap_app

from gateway.net.websocket import RawSocketTransport

PEEK_BYTES = 64
PEEK_SECONDS = 10.0
PEEK_RETRY_SECONDS = 0.005
MediaHandler = Callable[[RawSocketTransport, str], Awaitable[None]]


class HandoffListener(trio.abc.Listener[trio.SocketStream]):
    """A listener whose connections were accepted, and looked at, by the front door."""

    def __init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel[trio.SocketStream](math.inf)

    def hand_off(self, stream: trio.SocketStream) -> None:
        self._send.send_nowait(stream)

    async def accept(self) -> trio.SocketStream:
        return await self._receive.receive()

    async def aclose(self) -> None:
        await self._receive.aclose()


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


async def serve_hypercorn(
    app: ASGIFramework,
    config: Config,
    listener: trio.abc.Listener[trio.SocketStream],
    *,
    shutdown_trigger: Callable[[], Awaitable[None]],
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    wrapped = wrap_app(app, config.wsgi_max_body_size, None)
    state: LifespanState = {}
    lifespan = Lifespan(wrapped, config, state)
    context = WorkerContext(None)
    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        async with trio.open_nursery() as server_nursery:
            task_status.started()
            handler = partial(TCPServer, wrapped, config, context, ConnectionState(state.copy()))
            try:
                async with trio.open_nursery(strict_exception_groups=True) as nursery:
                    nursery.start_soon(raise_shutdown, shutdown_trigger)
                    nursery.start_soon(raise_shutdown, context.terminate.wait)
                    nursery.start_soon(
                        partial(trio.serve_listeners, handler, [listener], handler_nursery=server_nursery)
                    )
            except BaseExceptionGroup as error:
                _, others = error.split((ShutdownError, KeyboardInterrupt))
                if others is not None:
                    raise others from None
            finally:
                await context.terminated.set()
                server_nursery.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()
