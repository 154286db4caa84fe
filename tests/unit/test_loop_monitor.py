"""The loop monitor: lag past its limit means overloaded, and it takes calm to leave."""

import trio

from gateway.observability.loop_monitor import LoopMonitor


async def test_a_stalled_loop_is_overloaded_until_the_lag_falls_well_below_the_limit(autojump_clock):
    monitor = LoopMonitor(max_lag_ms=25, max_cpu_share=0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(monitor.run)
        await trio.sleep(1)
        assert monitor.overloaded() is None
        for _ in range(10):  # ten ticks, each well over 100 ms late: the loop is saturated
            autojump_clock.jump(0.25)
            await trio.sleep(0.1)
        assert "event-loop lag" in (monitor.overloaded() or "")
        lagging = monitor.lag_ms
        await trio.sleep(0.3)  # calm again, but not for long: still above half the limit
        assert monitor.lag_ms < lagging
        assert monitor.overloaded() is not None
        await trio.sleep(5)
        assert monitor.overloaded() is None
        nursery.cancel_scope.cancel()
