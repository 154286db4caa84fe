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
