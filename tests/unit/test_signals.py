"""Signals: drain first, end calls on a second signal, a duplicate delivery is not a second."""

import os
import signal

import trio

from gateway.process.signals import follow_signals


async def test_a_signal_delivered_twice_within_the_window_only_starts_the_drain():
    """`make run` under a process-group SIGTERM delivers it twice, milliseconds apart: that
    is one signal (drain), and only a later one ends the calls."""
    stop, hurry = trio.Event(), trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(follow_signals, stop, hurry, 0.3)
        await trio.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)
        await trio.sleep(0.02)
        os.kill(os.getpid(), signal.SIGTERM)
        await trio.sleep(0.1)
        assert stop.is_set()
        assert not hurry.is_set()
        await trio.sleep(0.4)
        os.kill(os.getpid(), signal.SIGINT)
        with trio.fail_after(2):
            await hurry.wait()
        nursery.cancel_scope.cancel()
