"""`make soak`: calls with churn for a long time; does anything grow?

Run: make soak   (or .venv/bin/python ops/bench/soak.py [--minutes 30] [--calls 40])

One gateway process (the local agent answering, the gateway pinned to one core) and, on
the other core, waves of simulated callers: a new wave of `--calls` calls every half
call-length, so about 1.5 waves overlap and calls start and end all the time; a third
hang up early, a fifth talk over the answers. Every `--sample-seconds` the gateway's
RSS, open file descriptors and trio tasks are sampled (tasks from its own metrics).
After a warm-up (the first sixth of the run) it prints how much each grew from the
first samples to the last ones, the calls placed and how they ended, and, once the last
wave is over, whether the process is back to the descriptors and tasks it had before the
first call. Writes out/soak/soak.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2
from processes import GATEWAY, GATEWAY_CORE, LOAD_CORE, REPO, Process, base_env

METRICS_TOKEN = "soak-metrics-token-7d1"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--calls", type=int, default=40, help="calls per wave")
    parser.add_argument("--call-seconds", type=float, default=20.0)
    parser.add_argument("--sample-seconds", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=REPO / "out" / "soak")
    parser.add_argument("--gateway-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra settings for the gateway (repeatable)")  # fmt: skip
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    gateway = Process(
        [*GATEWAY, "run", "--config", "config/default.toml"],
        GATEWAY_CORE,
        {**base_env(), "GATEWAY_PORT": "0", "GATEWAY_LOG_FORMAT": "json", "GATEWAY_DRAIN_SECONDS": "0",
         "GATEWAY_METRICS_TOKEN": METRICS_TOKEN, "GATEWAY_MAX_CALLS": str(args.calls * 3),
         **dict(setting.split("=", 1) for setting in args.gateway_env)},
        args.out / "gateway.log",
    )  # fmt: skip
    url = json.loads(gateway.wait_for('"gateway.started"', 30))["voice_webhook"].removesuffix("/twilio/voice")
    time.sleep(1.0)
    started = time.monotonic()
    before = sample(gateway, url, 0.0)
    samples, waves = soak(gateway, url, args)
    time.sleep(3.0)  # the last calls' summaries, the last pre-warm sockets
    after = sample(gateway, url, time.monotonic() - started)
    alive = gateway.popen.poll() is None
    gateway.stop()
    report = summarise(args, before, after, samples, waves, gateway.lines, alive)
    (args.out / "soak.json").write_text(json.dumps(report, indent=2) + "\n")
    print(render(report))
    return 0 if alive else 1


def soak(gateway: Process, url: str, args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[dict]]:
    started = time.monotonic()
    end = started + args.minutes * 60
    waves: list[subprocess.Popen[str]] = []
    results: list[dict] = []
    samples: list[dict[str, Any]] = []
    next_wave = next_sample = started
    while time.monotonic() < end or waves:
        now = time.monotonic()
        if now >= next_wave and now < end - args.call_seconds:
            waves.append(wave(url, args, len(results) + len(waves)))
            next_wave = now + args.call_seconds / 2
        if now >= next_sample and now < end:
            samples.append(sample(gateway, url, now - started))
            next_sample = now + args.sample_seconds
        for finished in [w for w in waves if w.poll() is not None]:
            waves.remove(finished)
            out = finished.stdout.read() if finished.stdout else ""
            results.append(json.loads(out[out.index("{") :]) if "{" in out else {"calls": 0})
        if gateway.popen.poll() is not None:
            break
        time.sleep(0.25)
    return samples, results


def wave(url: str, args: argparse.Namespace, seed: int) -> subprocess.Popen[str]:
    command = [*GATEWAY, "simulate-load", "--url", url, "--calls", str(args.calls), "--seconds",
               str(args.call_seconds), "--ramp", str(args.call_seconds / 2), "--hangups", "0.33",
               "--interrupts", "0.2", "--seed", str(seed)]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, env=base_env(), stdout=subprocess.PIPE, text=True)
    os.sched_setaffinity(process.pid, {LOAD_CORE})
    return process


def sample(gateway: Process, url: str, at: float) -> dict[str, Any]:
    pid = gateway.popen.pid
    fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    metrics = httpx2.get(
        url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
    ).text
    values = {line.split()[0]: float(line.split()[1]) for line in metrics.splitlines()
              if line and not line.startswith("#") and len(line.split()) == 2}  # fmt: skip
    tasks, live = int(values["gateway_tasks"]), int(values["gateway_active_calls"])
    return {"at_s": round(at, 1), "rss_kb": gateway.rss_kb(), "fds": fds, "tasks": tasks, "live_calls": live}


def growth(samples: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """First third of the samples after warm-up against the last third: median to median."""
    third = max(1, len(samples) // 3)
    first = statistics.median(s[key] for s in samples[:third])
    last = statistics.median(s[key] for s in samples[-third:])
    return {
        "first": first,
        "last": last,
        "growth_pct": round((last - first) / first * 100, 2) if first else None,
    }


def summarise(args, before, after, samples, waves, lines, alive) -> dict[str, Any]:  # noqa: PLR0917
    warm = [s for s in samples if s["at_s"] >= args.minutes * 60 / 6] or samples
    summaries = [json.loads(line) for line in lines if '"call.summary"' in line]
    reasons: dict[str, int] = {}
    for summary in summaries:
        reasons[summary["end_reason"]] = reasons.get(summary["end_reason"], 0) + 1
    return {
        "minutes": args.minutes,
        "calls_placed": sum(w.get("calls", 0) for w in waves),
        "calls_completed": sum(w.get("completed", 0) for w in waves),
        "ended_by_gateway": sum(w.get("ended_by_gateway", 0) for w in waves),
        "declined": sum(w.get("declined", 0) for w in waves),
        "summaries": len(summaries),
        "end_reasons": reasons,
        "gateway_alive": alive,
        "samples": samples,
        "growth_after_warm_up": {key: growth(warm, key) for key in ("rss_kb", "fds", "tasks")},
        "idle_before": before,
        "idle_after": after,
    }


def render(report: dict[str, Any]) -> str:
    lines = [
        f"soak: {report['minutes']:g} min, {report['calls_placed']} calls placed, "
        f"{report['calls_completed']} ran their script, {report['declined']} declined at the webhook, "
        f"{report['ended_by_gateway']} ended by the gateway, "
        f"{report['summaries']} summaries, gateway {'alive' if report['gateway_alive'] else 'DEAD'}",
        f"end reasons: {report['end_reasons']}",
        "growth after warm-up (median of the first third of samples -> median of the last third):",
    ]
    for key, figure in report["growth_after_warm_up"].items():
        lines.append(f"  {key:7} {figure['first']:>10} -> {figure['last']:>10}  ({figure['growth_pct']}%)")
    before, after = report["idle_before"], report["idle_after"]
    lines.append(
        f"idle before the first call / after the last: fds {before['fds']} / {after['fds']}, tasks "
        f"{before['tasks']} / {after['tasks']}, RSS KB {before['rss_kb']} / {after['rss_kb']}"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
