"""Signals: the first SIGINT or SIGTERM starts the drain, the next ends the remaining calls."""

from __future__ import annotations

import signal

import structlog
import trio

log = structlog.get_logger("gateway")


async def follow_signals(stop: trio.Event, hurry: trio.Event) -> None:
    """The first SIGINT/SIGTERM starts the drain; the next ends the remaining calls now."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            action = "end_calls" if stop.is_set() else "drain"
            log.info("gateway.signal", signal=signal.Signals(signum).name, action=action)
            (hurry if stop.is_set() else stop).set()
