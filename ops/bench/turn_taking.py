"""Turn-taking figures from real calls: barge-in speed, truncation accuracy, reconnect gap, pre-warm.

Run: make bench-turns   (or .venv/bin/python ops/bench/turn_taking.py [--calls N])

Each figure comes from real calls over loopback sockets: the gateway (in this process),
the local agent behind it, and the Twilio simulator playing the caller in real time.
Prints figures, asserts nothing.

- speech_started -> clear sent: measured inside the gateway, from the moment the AI
  session parses `speech_started` to the moment the writer has sent `clear`.
- caller speech -> assistant silent: from the caller's first loud frame (as sent by the
  simulator) to the moment the simulated Twilio buffer stops playing; includes the local
  agent's VAD (60 ms of speech before it fires).
- truncation error: `audio_end_ms` the gateway sent minus what the simulated caller
  actually heard of the item before the clear.
- reconnect gap: the local agent drops its socket mid-answer (1011); from that moment to
  the next session's `session.created` at the gateway.
- time to first audio: from the TwiML answer to the first greeting byte heard, with a
  provider that takes `--accept-delay-ms` to accept a socket and a Twilio that takes
  `--stream-delay-ms` to open the stream, with pre-warm on and off.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time
from collections import defaultdict
from functools import partial
from typing import Any

import numpy as np
import structlog
import trio

from gateway.process.serving import serve
from gateway.settings import DEV_TWILIO_ACCOUNT_SID, DEV_TWILIO_AUTH_TOKEN, Settings, load_settings
from gateway.simulator.audio import caller_phrase
from gateway.simulator.caller import CallReport, CallScript, simulate_call


class Recorder:
    """A structlog processor that keeps (monotonic time, event) and prints nothing."""

    def __init__(self) -> None:
        self.events: list[tuple[float, dict[str, Any]]] = []

    def __call__(self, _logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append((time.monotonic(), dict(event)))
        raise structlog.DropEvent

    def named(self, name: str) -> list[tuple[float, dict[str, Any]]]:
        return [(t, e) for t, e in self.events if e["event"] == name]


async def calls(settings: Settings, scripts: list[CallScript], concurrency: int) -> list[CallReport]:
    stop = trio.Event()
    reports: list[CallReport] = []
    limit = trio.CapacityLimiter(concurrency)

    async def one(script: CallScript) -> None:
        async with limit:
            reports.append(
                await simulate_call(bound.public_url, DEV_TWILIO_AUTH_TOKEN, DEV_TWILIO_ACCOUNT_SID, script)
            )

    async with trio.open_nursery() as nursery:
        gateway = await nursery.start(partial(serve, settings, stop=stop, handle_signals=False))
        bound = gateway.settings
        async with trio.open_nursery() as callers:
            for script in scripts:
                callers.start_soon(one, script)
        stop.set()
    return reports


def percentiles(values: list[float]) -> str:
    if not values:
        return "no samples"
    names = ("min", "p50", "p90", "p99", "max")
    cells = "  ".join(
        f"{name} {value:7.2f}"
        for name, value in zip(names, np.percentile(values, [0, 50, 90, 99, 100]), strict=True)
    )
    return f"{cells}  (n={len(values)})"


async def barge_ins(count: int, concurrency: int, recorder: Recorder) -> None:
    rng = random.Random(7)
    scripts = [
        CallScript(utterance=caller_phrase(), interrupt_after_ms=rng.uniform(400, 4500)) for _ in range(count)
    ]
    recorder.events.clear()
    reports = await calls(load_settings(None, {"GATEWAY_PORT": "0"}), scripts, concurrency)
    clear_ms = [
        e["clear_latency_ms"] for _, e in recorder.named("call.barge_in") if e.get("source") == "provider"
    ]
    truncated = {e["call_sid"]: e["audio_end_ms"] for _, e in recorder.named("ai.truncated")}
    errors = [
        truncated[r.call_sid] - r.heard_before_clear_ms
        for r in reports
        if r.call_sid in truncated and r.heard_before_clear_ms is not None
    ]
    stops = [
        r.assistant_stopped_ms - r.speech_started_ms
        for r in reports
        if r.assistant_stopped_ms is not None and r.speech_started_ms is not None
    ]
    summaries = [e for _, e in recorder.named("call.summary")]
    print(f"\nbarge-in ({count} calls, {concurrency} at a time, interrupting the greeting at random points)")
    print(f"  speech_started -> clear sent (ms)     {percentiles(clear_ms)}")
    print(f"  caller speech -> assistant silent (ms) {percentiles(stops)}")
    print(f"  truncation error (ms, sent - heard)   {percentiles(errors)}")
    print(f"  'already shorter than' errors         {sum(s['truncate_errors'] for s in summaries)}")
    print(f"  underruns                              {sum(s['underruns'] for s in summaries)}")
    print(f"  protocol violations                    {sum(len(r.violations) for r in reports)}")


async def reconnects(count: int, concurrency: int, recorder: Recorder) -> None:
    recorder.events.clear()
    env = {
        "GATEWAY_PORT": "0",
        "GATEWAY_LOCAL_AGENT_DROP_AFTER_DELTAS": "20",
        "GATEWAY_LOCAL_AGENT_DROPS": str(count),
    }
    await calls(load_settings(None, env), [CallScript(utterance=caller_phrase())] * count, concurrency)
    drops: dict[str, float] = {}
    created: dict[str, list[float]] = defaultdict(list)
    for when, event in recorder.events:
        if event["event"] == "ai.reconnecting":
            drops.setdefault(event["call_sid"], when)
        elif event["event"] == "ai.session_created":
            created[event["call_sid"]].append(when)
    gaps = [(created[sid][1] - dropped) * 1000 for sid, dropped in drops.items() if len(created[sid]) > 1]
    summaries = [e for _, e in recorder.named("call.summary")]
    print(f"\nreconnect ({count} calls, the AI dropping each mid-greeting)")
    print(f"  drop noticed -> new session created (ms) {percentiles(gaps)}")
    answered = sum(s["end_reason"] == "twilio_stop" for s in summaries)
    print(f"  calls that went on to answer the caller  {answered} of {len(summaries)}")


async def prewarm(count: int, accept_delay_ms: int, stream_delay_ms: int, recorder: Recorder) -> None:
    print(
        f"\ntime to first audio (provider accepts in {accept_delay_ms} ms, Twilio opens the stream "
        f"{stream_delay_ms} ms after the webhook; {count} calls each)"
    )
    script = CallScript(utterance=b"", max_seconds=3, stream_delay_ms=stream_delay_ms)
    for prewarm_on in (False, True):
        recorder.events.clear()
        env = {
            "GATEWAY_PORT": "0",
            "GATEWAY_LOCAL_AGENT_ACCEPT_DELAY_MS": str(accept_delay_ms),
            "GATEWAY_AI_PREWARM": str(prewarm_on).lower(),
        }
        reports = await calls(load_settings(None, env), [dataclasses.replace(script)] * count, 1)
        first = [r.first_audio_ms for r in reports if r.first_audio_ms is not None]
        print(f"  pre-warm {'on ' if prewarm_on else 'off'} (ms)  {percentiles(first)}")


async def main(args: argparse.Namespace) -> None:
    recorder = Recorder()
    structlog.configure(processors=[structlog.contextvars.merge_contextvars, recorder])
    await barge_ins(args.calls, args.concurrency, recorder)
    await reconnects(max(4, args.calls // 4), args.concurrency, recorder)
    await prewarm(max(4, args.calls // 4), args.accept_delay_ms, args.stream_delay_ms, recorder)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--accept-delay-ms", type=int, default=300)
    parser.add_argument("--stream-delay-ms", type=int, default=400)
    trio.run(main, parser.parse_args())
