"""Watchdogs: notice a peer that has gone quiet, without mistaking a slow loop for one.

A peer that vanishes without closing (a half-open TCP connection: the far end crashed,
a NAT forgot the flow) looks exactly like a quiet one. A watchdog looks at when the peer
was last heard from, every `period_s`; once that is more than `limit_s` ago, the peer is
gone. When the watchdog itself wakes up late (the event loop is saturated), the reader
may simply not have had its turn yet: that look is skipped, so overload makes calls
late, never cut.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

import trio

from actors.message_socket import Liveness, SocketClosed


async def wait_for_silence(
    last_heard: Callable[[], float],
    limit_s: float,
    period_s: float = 1.0,
    *,
    on_quiet: Callable[[float], Awaitable[None]] | None = None,
) -> float:
    """Return how long the peer had been quiet once that exceeds `limit_s`.

    `on_quiet(quiet_s)` runs on each look that finds the peer quiet for a period or more
    but not yet gone (to send a ping, say)."""
    while True:
        due = trio.current_time() + period_s
        await trio.sleep_until(due)
        now = trio.current_time()
        if now - due > period_s / 2:
            continue  # we woke up late: the loop is busy, not necessarily the peer silent
        quiet = now - last_heard()
        if quiet >= limit_s:
            return quiet
        if quiet >= period_s and on_quiet is not None:
            await on_quiet(quiet)


async def wait_for_dead_peer(socket: Liveness, ping_interval_s: float, limit_s: float) -> float:
    """Ping a quiet peer every `ping_interval_s`; return how long it had been quiet once
    nothing at all, not even a pong, came for `limit_s`."""

    async def ping(_quiet_s: float) -> None:
        with trio.move_on_after(ping_interval_s), contextlib.suppress(SocketClosed):
            await socket.ping()

    return await wait_for_silence(lambda: socket.last_received, limit_s, ping_interval_s, on_quiet=ping)
