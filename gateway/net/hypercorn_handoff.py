"""The hand-off to hypercorn: the only module that touches hypercorn's internals.

The front door accepts every connection itself and hands hypercorn those that are not
media streams, through a `HandoffListener`. `serve_hypercorn` is hypercorn's trio
`worker_serve` (0.18) reduced to that one listener: lifespan, the TCP server per
connection, graceful shutdown on `shutdown_trigger`. It relies on hypercorn internals
(`Lifespan`, `TCPServer`, `WorkerContext`, `wrap_app`, `raise_shutdown`), so hypercorn
is pinned to the release this was written against (`SUPPORTED_HYPERCORN`, pyproject's
range) and tests/unit/test_hypercorn_handoff.py fails loudly when an upgrade changes
any signature relied on here.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from functools import partial

import trio
from hypercorn.config import Config
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ASGIFramework, ConnectionState, LifespanState
from hypercorn.utils import ShutdownError, raise_shutdown, wrap_app

SUPPORTED_HYPERCORN = "0.18"


class ReplayStream(trio.abc.HalfCloseableStream):
    """A connection whose first bytes the front door already read: they are received
    again first. `on_close` runs once, when hypercorn closes the connection."""

    def __init__(self, stream: trio.SocketStream, head: bytes, on_close: Callable[[], None]) -> None:
        self.socket = stream.socket  # hypercorn reads the peer's address from it
        self._stream = stream
        self._head = head
        self._on_close: Callable[[], None] | None = on_close

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._head:
            data, self._head = self._head, b""
            await trio.lowlevel.checkpoint()
            return data
        return bytes(await self._stream.receive_some(max_bytes))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            on_close, self._on_close = self._on_close, None
            if on_close is not None:
                on_close()


class HandoffListener(trio.abc.Listener[trio.abc.Stream]):
    """A listener whose connections were accepted, and looked at, by the front door."""

    def __init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel[trio.abc.Stream](math.inf)

    def hand_off(self, stream: trio.abc.Stream) -> bool:
        """Give hypercorn the connection; False once hypercorn has stopped accepting (a drain)."""
        try:
            self._send.send_nowait(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True

    async def accept(self) -> trio.abc.Stream:
        return await self._receive.receive()

    async def aclose(self) -> None:
        await self._receive.aclose()


async def serve_hypercorn(
    app: ASGIFramework,
    config: Config,
    listener: trio.abc.Listener[trio.abc.Stream],
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
