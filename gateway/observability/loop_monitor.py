"""How busy the process is: event-loop lag and CPU share, for admission and the metrics.

A timer is due every 100 ms; how late it fires is the loop's lag (what every call's next
frame waits on top of its own work), smoothed over about two seconds. CPU is the
process's share of one core over the last five seconds (a trio process uses one core).
Both are smoothed so that a burst of calls arriving together (each one's webhook,
handshakes and AI session set-up) does not read as a full process: only sustained load
does. Past either limit the process is overloaded: admission declines new calls and
`/readyz` answers 503 until both are back under half their limits (no flapping), while
the calls already live go on, late rather than cut.
"""

from __future__ import annotations

import time
from collections import deque

import trio

PERIOD_S = 0.1
SMOOTHING = 0.05  # per 100 ms tick: about two seconds of memory
CPU_WINDOW_S = 5.0
CPU_SAMPLE_S = 1.0


class LoopMonitor:
    def __init__(self, max_lag_ms: float, max_cpu_share: float) -> None:
        """A limit of 0 is no limit."""
        self.max_lag_ms = max_lag_ms
        self.max_cpu_share = max_cpu_share
        self.lag_ms = 0.0
        self.cpu_share = 0.0
        self.reason: str | None = None  # why the process is overloaded now, if it is

    async def run(self) -> None:
        readings = deque([(time.monotonic(), time.process_time())])
        while True:
            due = trio.current_time() + PERIOD_S
            await trio.sleep_until(due)
            lag_ms = max(0.0, trio.current_time() - due) * 1000
            self.lag_ms += SMOOTHING * (lag_ms - self.lag_ms)
            wall = time.monotonic()
            if wall - readings[-1][0] >= CPU_SAMPLE_S:
                readings.append((wall, time.process_time()))
                while wall - readings[1][0] >= CPU_WINDOW_S:
                    readings.popleft()
                (wall_at, cpu_at), (_, cpu) = readings[0], readings[-1]
                self.cpu_share = (cpu - cpu_at) / (wall - wall_at)
            self.reason = self._judge()

    def overloaded(self) -> str | None:
        """Why the process should take no new call now, or None."""
        return self.reason

    def _judge(self) -> str | None:
        slack = 0.5 if self.reason is not None else 1.0  # leave overload only well below the limits
        if self.max_lag_ms and self.lag_ms > self.max_lag_ms * slack:
            return f"event-loop lag {self.lag_ms:.0f} ms, limit {self.max_lag_ms:g} ms"
        if self.max_cpu_share and self.cpu_share > self.max_cpu_share * slack:
            return f"CPU {self.cpu_share:.0%} of a core, limit {self.max_cpu_share:.0%}"
        return None
