"""LatencyHistogram: per-call latency percentiles in a few hundred bytes.

A call records the gateway's own latency for every frame (caller frame in -> append sent
to the AI; AI delta in -> first frame of it sent to Twilio). Keeping samples would cost
memory per call, so counts go into fixed buckets instead: 50 us wide up to 5 ms (where
the gateway's latencies live), 5 ms wide up to 100 ms, then one bucket for the rest.
A percentile is reported as the upper edge of its bucket: at most 50 us high below 5 ms.
"""

from __future__ import annotations

from bisect import bisect_left

_EDGES_MS = (
    *(round(0.05 * i, 2) for i in range(1, 101)),  # 0.05 .. 5.00 ms
    *(5.0 + 5.0 * i for i in range(1, 20)),  # 10 .. 100 ms
)


class LatencyHistogram:
    __slots__ = ("_counts", "count", "max_ms")

    def __init__(self) -> None:
        self._counts = [0] * (len(_EDGES_MS) + 1)
        self.count = 0
        self.max_ms = 0.0

    def record(self, seconds: float) -> None:
        ms = seconds * 1000
        self._counts[bisect_left(_EDGES_MS, ms)] += 1
        self.count += 1
        self.max_ms = max(self.max_ms, ms)

    def percentile(self, fraction: float) -> float | None:
        """Upper bucket edge below which `fraction` of the samples lie (the max for the last bucket)."""
        if not self.count:
            return None
        rank = fraction * self.count
        seen = 0
        for index, count in enumerate(self._counts):
            seen += count
            if seen >= rank and count:
                return _EDGES_MS[index] if index < len(_EDGES_MS) else round(self.max_ms, 3)
        return round(self.max_ms, 3)

    def summary(self) -> dict[str, float | int | None]:
        return {
            "p50": self.percentile(0.5),
            "p99": self.percentile(0.99),
            "max": round(self.max_ms, 3) if self.count else None,
            "samples": self.count,
        }
