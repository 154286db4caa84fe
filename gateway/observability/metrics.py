"""Prometheus metrics for `/metrics`: what a platform team graphs, alerts on and scales by.

Nothing here runs per audio frame. Per-frame figures (frames, drops, channel depth,
underruns) already live in each call's own counters; `LiveCallCollector` reads them
when Prometheus scrapes, and folds a call's final counters into process totals when it
ends. Everything else moves on call events (a session opened, a barge-in, a call
ended) delivered through `CallEventSink`, a handful per call.

Labels stay low-cardinality: direction, end reason, channel, refusal reason. Never a
call sid or a phone number.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import trio
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from actors.supervisor import CallCounters, CallSupervisor
from gateway.calls.live import LiveCalls
from gateway.observability.logs import dropped_lines
from gateway.observability.loop_monitor import LoopMonitor

# No `_created` series: they double the output and nobody graphs them.
disable_created_metrics()  # type: ignore[no-untyped-call]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# The audio channels of a call (actors.supervisor); the pcm ones exist when transcoding.
CHANNELS = ("caller_audio", "assistant_audio", "caller_pcm", "assistant_ulaw")

_SETUP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
_CONNECT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
_CLEAR_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25)


class GatewayMetrics:
    def __init__(
        self,
        calls: LiveCalls,
        *,
        max_calls: int,
        admin_clients: Callable[[], int],
        ready: Callable[[], bool],
        draining: Callable[[], bool],
        load: LoopMonitor | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.calls_total = Counter(
            "gateway_calls",
            "Calls carried to their end, by direction and end reason",
            ["direction", "outcome"],
            registry=self.registry,
        )
        self.call_setup = Histogram(
            "gateway_call_setup_seconds",
            "Voice webhook answered -> media stream admitted and the call's actors running",
            buckets=_SETUP_BUCKETS,
            registry=self.registry,
        )
        self.ai_connect = Histogram(
            "gateway_ai_connect_seconds",
            "Time a call waited for an AI session to open (pre-warmed sessions are near 0)",
            buckets=_CONNECT_BUCKETS,
            registry=self.registry,
        )
        self.barge_in_clear = Histogram(
            "gateway_barge_in_clear_seconds",
            "Caller speech detected -> Twilio clear sent",
            buckets=_CLEAR_BUCKETS,
            registry=self.registry,
        )
        self.ai_reconnects = Counter(
            "gateway_ai_reconnects",
            "AI sessions reopened mid-call after a drop or a recycle",
            registry=self.registry,
        )
        self.admission_rejects = Counter(
            "gateway_admission_rejects",
            "Calls declined with a polite message instead of a stream, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.live = LiveCallCollector(calls, max_calls, admin_clients, ready, draining, load=load)
        self.registry.register(self.live)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def watch_fleet(self, figures: Callable[[], FleetFigures]) -> None:
        """In a fleet: whether Redis answers, and what its outages cost, read at scrape time."""
        self.registry.register(FleetCollector(figures))

    def on_call_event(self, topic: str, data: Mapping[str, Any], direction: str) -> None:
        """A call's event on its way to the bus (see `actors.events`)."""
        if topic == "ai.session":
            self.ai_connect.observe(float(data["connect_s"]))
        elif topic == "ai.reconnecting":
            self.ai_reconnects.inc()
        elif topic == "barge_in":
            self.barge_in_clear.observe(float(data["clear_latency_ms"]) / 1000)
        elif topic == "call.ended":
            self.calls_total.labels(direction, str(data["end_reason"])).inc()

    def call_ended(self, supervisor: CallSupervisor) -> None:
        """Fold an ended call's counters into the totals; call it as the call leaves `LiveCalls`."""
        self.live.fold(supervisor.counters())


@dataclass(frozen=True, slots=True)
class FleetFigures:
    redis_up: bool
    records_lost: int  # call record reads and writes that could not reach Redis
    events_dropped: int  # call events not relayed to the other instances
    streams_unguarded: int  # streams admitted without the fleet-wide checks


class FleetCollector(Collector):
    def __init__(self, figures: Callable[[], FleetFigures]) -> None:
        self._figures = figures

    def collect(self) -> Iterator[Metric]:
        now = self._figures()
        yield GaugeMetricFamily(
            "gateway_fleet_redis_up", "1 while Redis answers, 0 during an outage", now.redis_up
        )
        for name, text, value in (
            ("gateway_fleet_records_lost", "Call record reads and writes lost to Redis outages",
             now.records_lost),
            ("gateway_fleet_events_dropped", "Call events not relayed to the other instances",
             now.events_dropped),
            ("gateway_fleet_streams_unguarded", "Streams admitted without the fleet-wide checks (Redis down)",
             now.streams_unguarded),
        ):  # fmt: skip
            yield CounterMetricFamily(name, text, value)


class LiveCallCollector(Collector):
    """Series read at scrape time: the live calls' own counters plus those of ended calls."""

    def __init__(
        self,
        calls: LiveCalls,
        max_calls: int,
        admin_clients: Callable[[], int],
        ready: Callable[[], bool],
        draining: Callable[[], bool],
        *,
        load: LoopMonitor | None = None,
    ) -> None:
        self._load = load
        self._calls = calls
        self._max_calls = max_calls
        self._admin_clients = admin_clients
        self._ready = ready
        self._draining = draining
        self._frames: Tally[str] = Tally()
        self._underruns = 0
        self._drops: Tally[str] = Tally(dict.fromkeys(CHANNELS, 0))

    def fold(self, counters: CallCounters) -> None:
        self._frames["in"] += counters.frames_in
        self._frames["out"] += counters.frames_out
        self._underruns += counters.underruns
        self._drops.update(counters.drops)

    def collect(self) -> Iterator[Metric]:
        live = [supervisor.counters() for supervisor in self._calls]
        yield _gauge("gateway_active_calls", "Calls whose media stream is up", len(live))
        yield _gauge("gateway_max_calls", "GATEWAY_MAX_CALLS: the admission cap", self._max_calls)
        yield _gauge("gateway_admin_clients", "Admin control WebSocket clients", self._admin_clients())
        yield _gauge("gateway_ready", "1 while the gateway accepts new calls", int(self._ready()))
        yield _gauge("gateway_draining", "1 once a drain started", int(self._draining()))
        yield _gauge("gateway_tasks", "trio tasks alive in the process (a leak shows as growth)", _tasks())
        if self._load is not None:
            lag = self._load.lag_ms / 1000
            yield _gauge("gateway_loop_lag_seconds", "Event-loop lag, smoothed over about a second", lag)
            yield _gauge(
                "gateway_cpu_share", "CPU used by the process, as a share of one core", self._load.cpu_share
            )
            overloaded = int(self._load.overloaded() is not None)
            yield _gauge("gateway_overloaded", "1 while new calls are declined for load", overloaded)
        frames = CounterMetricFamily(
            "gateway_audio_frames",
            "20 ms audio frames, by direction (in: caller, out: to caller)",
            labels=["direction"],
        )
        for direction in ("in", "out"):
            frames.add_metric([direction], self._frames[direction] + sum(_frames(c, direction) for c in live))
        yield frames
        drops = CounterMetricFamily(
            "gateway_audio_frames_dropped",
            "Audio items discarded by a full drop-oldest channel",
            labels=["channel"],
        )
        depth = GaugeMetricFamily(
            "gateway_channel_depth_max",
            "Deepest queue among live calls right now, by channel",
            labels=["channel"],
        )
        dropped = Tally(self._drops)
        deepest: dict[str, int] = {}
        for counters in live:
            dropped.update(counters.drops)
            for channel, items in counters.depths.items():
                deepest[channel] = max(deepest.get(channel, 0), items)
        for channel in sorted(dropped.keys() | deepest.keys()):
            drops.add_metric([channel], dropped[channel])
            depth.add_metric([channel], deepest.get(channel, 0))
        yield drops
        yield depth
        yield CounterMetricFamily(
            "gateway_log_lines_dropped",
            "Log lines dropped because stdout did not keep up (the calls never wait for it)",
            value=dropped_lines(),
        )
        underruns = self._underruns + sum(counters.underruns for counters in live)
        yield CounterMetricFamily(
            "gateway_playout_underruns",
            "Times a call's playout ran dry in the middle of a response",
            value=underruns,
        )


def _tasks() -> int:
    try:
        root = trio.lowlevel.current_root_task()
    except RuntimeError:  # not inside trio (a scrape from a test's thread)
        return 0
    stack, count = [root] if root is not None else [], 0
    while stack:
        task = stack.pop()
        count += 1
        stack += [child for nursery in task.child_nurseries for child in nursery.child_tasks]
    return count


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _frames(counters: CallCounters, direction: str) -> int:
    return counters.frames_in if direction == "in" else counters.frames_out
