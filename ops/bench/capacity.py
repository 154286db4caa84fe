"""Capacity side by side: the gateway against the simplest relay, under the same load.

Run: make bench   (or .venv/bin/python ops/bench/capacity.py [--steps 40,100,230] ...)

The yardstick is `../shared/bench/asyncio_relay.py` (FastAPI + uvicorn + websockets:
passthrough, `clear` on speech_started, nothing else), run from its own virtualenv
(`.venv-relay`, made from its requirements file); it is not our code and nothing in the
product or its tests needs it. At every step the relay and the gateway take turns (the
order alternates from step to step) behind the same load and the same benchmark AI:
three processes per run, each started fresh, the server under test pinned to core 0,
the benchmark AI (`gateway bench-ai`) and the load generator (`gateway simulate-load`)
on core 1. The AI leg is plain `ws://` or, as real providers are, `wss://` (the
benchmark AI serves TLS with a self-signed certificate that both servers are told to
trust through SSL_CERT_FILE).

The load: N Twilio calls of `--seconds` each, started evenly over `--ramp` seconds,
opening with identity frames, then alternating 1.5 s of speech with listening to a 2 s
answer streamed 4 times faster than real time. The benchmark AI speaks first (both
servers get the same greeting; the gateway's own greet-first is off) and, like OpenAI's
server VAD, cancels a response the caller talks over. Callers behave like people
(`--hangups`, `--interrupts`, 20% each by default): some talk over the answers, some
hang up right after the greeting, mid-word, while the assistant talks, or drop the
connection.

Per run (see figures.py for how each is computed): CPU ms per call-second and RSS per
call of the server under test; uplink added latency; downlink first audio and per-chunk
lateness; speech_started -> clear; truncation error against what the caller heard;
media and mark messages per call-second each way; drops and underruns (the gateway's
call summaries), violations, calls not completed, calls ended by the server, whether it
is alive, and the load side's own CPU. Then the ratios gateway / relay, and for
transcoding (pcm24k) the ratio to passthrough. Writes capacity.json and capacity.md.

`--profile` samples the gateway with py-spy in the steady window; `--memory` runs it
under tracemalloc and reports what it holds per call beyond what it held idle, by line
and by file (tracemalloc slows it: take no CPU or latency figure from such a run).
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from figures import latency_figures, message_figures, server_figures, summary_figures
from processes import (
    GATEWAY,
    GATEWAY_CORE,
    LOAD_CORE,
    RELAY,
    REPO,
    Process,
    base_env,
    free_port,
    relay_python,
    self_signed_certificate,
)
from profiling import memory_top, profile_top, start_profile
from report import machine, markdown, ratios

GLITCH_FREE_P99_MS = 20.0
LOAD_SIDE_SATURATED = 0.9  # share of core 1 used by generator + AI
RELAY_PUBLIC_URL = "https://gw.example.test"  # the relay's default PUBLIC_BASE_URL
RELAY_AUTH_TOKEN = "bench-auth-token"
SUBJECTS = ("relay", "gateway")
TRACED_GATEWAY = Path(__file__).with_name("traced_gateway.py")


@dataclass
class Step:
    subject: str  # "gateway" or "relay"
    audio_format: str
    transport: str  # the AI leg: "ws" or "wss"
    calls: int
    seconds: float
    ramp: float
    folder: Path
    profile: bool = False
    memory: bool = False
    hangups: float = 0.0
    interrupts: float = 0.0
    gateway_env: dict[str, str] = field(default_factory=dict)
    relay: Path = RELAY
    samples: list[tuple[float, float, float, int]] = field(default_factory=list)  # time, user, kernel, RSS


@dataclass
class Server:
    process: Process
    url: str  # where it listens
    public_url: str  # what Twilio signs ("" when the same)
    auth_token: str  # the Twilio auth token it checks signatures with ("" for the default)


def run_step(step: Step) -> dict[str, Any]:
    step.folder.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(18)
    tls = self_signed_certificate(step.folder.parent.parent) if step.transport == "wss" else None
    ai_command = [*GATEWAY, "bench-ai", "--format", step.audio_format, f"--api-key={key}", "--greet",
                  "--out", str(step.folder / "ai.npz")]  # fmt: skip
    if tls:
        ai_command += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
    ai = Process(ai_command, LOAD_CORE, base_env(), step.folder / "ai.log")
    port = json.loads(ai.wait_for('"port"', 20))["port"]
    ai_url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/v1"
    trust = {"SSL_CERT_FILE": str(tls[0])} if tls else {}
    server = (
        start_gateway(step, ai_url, key, trust)
        if step.subject == "gateway"
        else start_relay(step, ai_url, key, trust)
    )
    time.sleep(1.0)
    idle_rss = server.process.rss_kb()
    snapshots = Snapshots(server.process) if step.memory else None
    started = time.monotonic()
    ai_cpu_start = ai.cpu_seconds()
    load_command = [
        *GATEWAY, "simulate-load", "--url", server.url, "--calls", str(step.calls),
        "--seconds", str(step.seconds), "--ramp", str(step.ramp), "--hangups", str(step.hangups),
        "--interrupts", str(step.interrupts),
        "--out", str(step.folder / "load.npz"),
    ]  # fmt: skip
    if server.public_url:
        load_command += ["--public-url", server.public_url]
    if server.auth_token:
        load_command += ["--auth-token", server.auth_token]
    load = Process(load_command, LOAD_CORE, base_env(), step.folder / "load.log")
    spy = None
    while load.popen.poll() is None:
        now = time.monotonic() - started
        step.samples.append((now, *server.process.cpu_split(), server.process.rss_kb()))
        if snapshots is not None and now >= (step.ramp + step.seconds) / 2:
            snapshots.take_once()
        if step.profile and spy is None and now >= step.ramp + 2.0:
            spy = start_profile(server.process.popen.pid, step.seconds - step.ramp - 4.0, step.folder)
        time.sleep(0.25)
    load.stop()
    if spy is not None:
        spy.wait(timeout=30)
    ai_cpu = ai.cpu_seconds() - ai_cpu_start
    wall = time.monotonic() - started
    alive = server.process.popen.poll() is None
    server.process.stop()
    ai.stop()
    load_summary = json.loads("".join(load.lines[load.lines.index("{\n") :]))
    result = {
        "subject": step.subject,
        "audio_format": step.audio_format,
        "transport": step.transport,
        "calls": step.calls,
        **server_figures(step.samples, step.calls, step.ramp + 2.0, step.seconds - 1.0, idle_rss),
        **latency_figures(step.folder / "load.npz", step.folder / "ai.npz"),
        "messages_per_call_second": message_figures(load_summary),
        **summary_figures(server.process.lines),
        "violations": load_summary["violations"],
        "completed": load_summary["completed"],
        "failed": len(load_summary["failed"]),
        "hung_up_early": load_summary["hung_up_early"],
        "ended_by_gateway": load_summary["ended_by_gateway"],
        "declined": load_summary["declined"],
        "gateway_alive": alive,
        "load_cpu_share": round(load_summary["cpu_share"] + ai_cpu / wall, 3),
        "generator_tick_lateness_ms_p99": load_summary["tick_lateness_ms_p99"],
    }
    result["glitch_free"] = glitch_free(result)
    if spy is not None:
        result["profile_top"] = profile_top(step.folder / "server.folded")
    if snapshots is not None:
        result["memory_top"] = memory_top(step.folder, step.calls)
    return result


class Snapshots:
    """tracemalloc snapshots of the traced gateway: one idle at once, one under load later."""

    def __init__(self, process: Process) -> None:
        self.process = process
        self.taken = 0
        self._take()
        self.loaded = False

    def take_once(self) -> None:
        if not self.loaded:
            self.loaded = True
            self._take()

    def _take(self) -> None:
        self.process.popen.send_signal(signal.SIGUSR1)
        self.taken += 1
        self.process.wait_for(f'"tracemalloc.snapshot", "n": {self.taken}}}', 120)


def start_gateway(step: Step, ai_url: str, key: str, trust: dict[str, str]) -> Server:
    command = [sys.executable, str(TRACED_GATEWAY)] if step.memory else GATEWAY
    traced = {"TRACEMALLOC_DIR": str(step.folder)} if step.memory else {}
    process = Process(
        [*command, "run", "--config", "config/default.toml"],
        GATEWAY_CORE,
        {
            **traced,
            **base_env(),
            **trust,
            "GATEWAY_PORT": "0",
            "GATEWAY_LOG_FORMAT": "json",
            "GATEWAY_AI_PROVIDER": "openai",
            "GATEWAY_AI_GREET_FIRST": "false",  # the benchmark AI greets, for both servers
            "OPENAI_BASE_URL": ai_url,
            "OPENAI_API_KEY": key,
            "GATEWAY_AI_AUDIO_FORMAT": step.audio_format,
            "GATEWAY_MAX_CALLS": str(step.calls + 50),
            "GATEWAY_DRAIN_SECONDS": "0",
            **step.gateway_env,
        },
        step.folder / "gateway.log",
    )
    url = json.loads(process.wait_for('"gateway.started"', 30))["voice_webhook"].removesuffix("/twilio/voice")
    return Server(process, url, "", "")


def start_relay(step: Step, ai_url: str, key: str, trust: dict[str, str]) -> Server:
    port = free_port()
    process = Process(
        [str(relay_python(step.relay)), str(step.relay)],
        GATEWAY_CORE,
        {
            **base_env(),
            **trust,
            "OPENAI_WS_BASE": ai_url.replace("http", "ws", 1),
            "PUBLIC_BASE_URL": RELAY_PUBLIC_URL,
            "TWILIO_AUTH_TOKEN": RELAY_AUTH_TOKEN,
            "OPENAI_API_KEY": key,
            "PORT": str(port),
        },
        step.folder / "relay.log",
    )
    process.wait_listening(port, 30)
    return Server(process, f"http://127.0.0.1:{port}", RELAY_PUBLIC_URL, RELAY_AUTH_TOKEN)


def survived(result: dict[str, Any]) -> bool:
    """The step's floor, whatever the load: the process lived and ended no call itself."""
    return bool(result["gateway_alive"]) and result["ended_by_gateway"] == 0


def glitch_free(result: dict[str, Any]) -> bool:
    p99s = [result["uplink_ms"]["p99"], result["downlink_first_audio_ms"]["p99"]]
    return (
        survived(result)
        and result["completed"] == result["calls"]
        and not result["drops"]
        and not result["underruns"]
        and result["violations"] == 0
        and all(p is not None and p <= GLITCH_FREE_P99_MS for p in p99s)
    )


# ---- the run ------------------------------------------------------------------------


def main() -> int:
    args = arguments()
    subjects = args.subjects.split(",")
    if "relay" in subjects and not args.relay.exists():
        print(f"capacity: the yardstick relay is not at {args.relay} (--relay PATH)", file=sys.stderr)
        return 2
    results = []
    extra = dict(setting.split("=", 1) for setting in args.gateway_env)
    for index, calls in enumerate(int(n) for n in args.steps.split(",")):
        order = subjects if index % 2 == 0 else subjects[::-1]
        step_results = []
        for audio_format in args.formats.split(","):
            for transport in args.transports.split(","):
                for subject in order:
                    if subject == "relay" and audio_format != "pcmu":
                        continue  # the relay only passes G.711 through
                    for run in range(args.repeat):
                        folder = args.out / f"{subject}-{audio_format}-{transport}-{calls}" / f"run{run}"
                        step = Step(subject, audio_format, transport, calls, args.seconds, args.ramp, folder,
                                    args.profile and subject == "gateway",
                                    args.memory and subject == "gateway", args.hangups, args.interrupts,
                                    extra, args.relay)  # fmt: skip
                        result = run_step(step)
                        step_results.append(result)
                        print(json.dumps(result), flush=True)
        results += step_results
        if any(r["load_cpu_share"] > LOAD_SIDE_SATURATED for r in step_results):
            break  # the load side, not the server, would be the limit from here on
    report = {"machine": machine(), "seconds": args.seconds, "ramp": args.ramp, "steps": results,
              "ratios": ratios(results)}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "capacity.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "capacity.md").write_text(markdown(report))
    print(markdown(report))
    return 0


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", default="40,100,230", help="concurrent calls at each step")
    parser.add_argument("--subjects", default=",".join(SUBJECTS), help="relay,gateway or one of them")
    parser.add_argument("--formats", default="pcmu,pcm24k", help="the AI leg's audio formats")
    parser.add_argument("--transports", default="ws,wss", help="the AI leg: plain and/or TLS")
    parser.add_argument("--relay", type=Path, default=RELAY, help="the yardstick relay's script")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--ramp", type=float, default=5.0)
    parser.add_argument("--hangups", type=float, default=0.2, help="share of callers who hang up early")
    parser.add_argument("--interrupts", type=float, default=0.2, help="share who talk over the answers")
    parser.add_argument("--repeat", type=int, default=1, help="run each step this many times")
    parser.add_argument("--gateway-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra settings for the gateway (repeatable)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=REPO / "out" / "bench")
    parser.add_argument("--profile", action="store_true", help="sample the gateway with py-spy")
    parser.add_argument("--memory", action="store_true",
                        help="trace the gateway's allocations (tracemalloc: no CPU figures)")  # fmt: skip
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(main())
