"""Signals: the first SIGINT or SIGTERM starts the drain, the next ends the remaining calls.

A signal that repeats within `REPEAT_WINDOW_S` is the same signal delivered twice, not
the operator's second one: `make run` under a process-group SIGTERM gets it from the
shell and again from make, milliseconds apart, and must not cut every call for that.
"""

from __future__ import annotations

import math
import signal

import structlog
import trio

log = structlog.get_logger("gateway")

REPEAT_WINDOW_S = 1.0


async def follow_signals(
    stop: trio.Event, hurry: trio.Event, repeat_window_s: float = REPEAT_WINDOW_S
) -> None:
    """The first SIGINT/SIGTERM starts the drain; a later one ends the remaining calls now."""
    last = -math.inf
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            now = trio.current_time()
            repeat, last = now - last < repeat_window_s, now
            if repeat:
                action = "ignored_repeat"
            else:
                action = "end_calls" if stop.is_set() else "drain"
                (hurry if stop.is_set() else stop).set()
            log.info("gateway.signal", signal=signal.Signals(signum).name, action=action)
