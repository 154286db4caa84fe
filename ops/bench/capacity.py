"""How many calls one core carries, and what the gateway adds to latency and memory.

Run: make bench   (or .venv/bin/python ops/bench/capacity.py [--steps 50,100,...])

Three processes per step, each started fresh: the gateway pinned to core 0, and on core
1 the benchmark AI (`gateway bench-ai`) and the load generator (`gateway simulate-load`),
which plays N Twilio calls of `--seconds` each, started evenly over `--ramp` seconds. Each
call opens with identity frames, then alternates 1.5 s of speech with listening to a 2 s
answer that the AI streams 4 times faster than real time, so both directions carry audio.

Per step:
- gateway CPU per call-second: the gateway's CPU time (utime + stime from /proc) over the
  window when every call is up, divided by calls x window length;
- RSS per call: the gateway's peak resident memory in that window minus its RSS before
  the first call, divided by the calls;
- uplink added latency: a Twilio frame sent by the generator -> the matching append
  received by the AI (frame by frame, on the shared CLOCK_MONOTONIC; sessions are matched
  to calls by their identity frames);
- downlink added latency: an AI response's first delta sent -> its first frame received
  by the generator (later frames are held back on purpose by playout pacing); and
  pacing lateness: how much later than a perfect pacer (same 100 ms lead) each later
  frame arrived;
- drops and underruns (the gateway's call summaries), protocol violations (the
  generator's checks), calls that did not complete, and the load side's own CPU share.

Callers behave like people (`--hangups`, `--interrupts`, 20% each by default): some talk
over the answers, some hang up right after the greeting, mid-word, while the assistant
talks, or drop the connection. A step fails outright if the gateway process died or
ended any call itself (`survived`); it is glitch-free when, besides, every call ran its
script to its end or its caller's hang-up, with 0 drops, 0 underruns, 0 violations and
added latency p99 <= 20 ms both ways. Stepping stops at the first step that is not, or
when the load side (one core for the generator and the AI) runs out of CPU, which then
limits the measurement rather than the gateway. Writes capacity.json and capacity.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
GATEWAY = [sys.executable, "-m", "gateway"]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
LEAD_FRAMES = 5  # the gateway's default 100 ms playout lead
GAP_SECONDS = 0.5  # silence between two answers heard by a caller
GLITCH_FREE_P99_MS = 20.0
LOAD_SIDE_SATURATED = 0.9  # share of core 1 used by generator + AI
_CORES = sorted(os.sched_getaffinity(0))
GATEWAY_CORE, LOAD_CORE = _CORES[0], _CORES[-1]  # the same core on a one-core machine


# ---- processes ----------------------------------------------------------------------


class Process:
    """A child process pinned to one core, its output collected line by line."""

    def __init__(self, command: list[str], core: int, env: dict[str, str], log: Path) -> None:
        self.log = log.open("w")
        self.lines: list[str] = []
        self.popen = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        os.sched_setaffinity(self.popen.pid, {core})
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line)
            self.log.write(line)

    def wait_for(self, text: str, seconds: float) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for line in self.lines:
                if text in line:
                    return line
            if self.popen.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"{self.popen.args!r} did not print {text!r}: {''.join(self.lines[-20:])}")

    def cpu_seconds(self) -> float:
        return sum(self.cpu_split())

    def cpu_split(self) -> tuple[float, float]:
        """(user, kernel) CPU seconds so far."""
        fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS

    def rss_kb(self) -> int:
        return int(Path(f"/proc/{self.popen.pid}/statm").read_text().split()[1]) * PAGE_KB

    def stop(self, seconds: float = 30) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        code = self.popen.wait(timeout=seconds)
        self._reader.join(timeout=5)
        self.log.close()
        return code


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "TWILIO_", "OPENAI_"))}
    return {**env, "PYTHONUNBUFFERED": "1"}


# ---- one step -----------------------------------------------------------------------


@dataclass
class Step:
    audio_format: str
    calls: int
    seconds: float
    ramp: float
    folder: Path
    profile: bool = False
    hangups: float = 0.0
    interrupts: float = 0.0
    gateway_env: dict[str, str] = field(default_factory=dict)
    samples: list[tuple[float, float, float, int]] = field(default_factory=list)  # time, user, kernel, RSS


def run_step(step: Step) -> dict[str, Any]:
    step.folder.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(18)
    ai = Process(
        [
            *GATEWAY,
            "bench-ai",
            "--format",
            step.audio_format,
            f"--api-key={key}",  # a key may start with "-"
            "--out",
            str(step.folder / "ai.npz"),
        ],
        LOAD_CORE,
        base_env(),
        step.folder / "ai.log",
    )
    port = json.loads(ai.wait_for('"port"', 20))["port"]
    gateway = Process(
        [*GATEWAY, "run", "--config", "config/default.toml"],
        GATEWAY_CORE,
        {
            **base_env(),
            "GATEWAY_PORT": "0",
            "GATEWAY_LOG_FORMAT": "json",
            "GATEWAY_AI_PROVIDER": "openai",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1",
            "OPENAI_API_KEY": key,
            "GATEWAY_AI_AUDIO_FORMAT": step.audio_format,
            "GATEWAY_MAX_CALLS": str(step.calls + 50),
            "GATEWAY_DRAIN_SECONDS": "0",
            **step.gateway_env,
        },
        step.folder / "gateway.log",
    )
    url = json.loads(gateway.wait_for('"gateway.started"', 30))["voice_webhook"].removesuffix("/twilio/voice")
    time.sleep(1.0)
    idle_rss = gateway.rss_kb()
    started = time.monotonic()
    ai_cpu_start = ai.cpu_seconds()
    load = Process(
        [*GATEWAY, "simulate-load", "--url", url, "--calls", str(step.calls), "--seconds", str(step.seconds),
         "--ramp", str(step.ramp), "--hangups", str(step.hangups), "--interrupts", str(step.interrupts),
         "--out", str(step.folder / "load.npz")],
        LOAD_CORE,
        base_env(),
        step.folder / "load.log",
    )  # fmt: skip
    spy = None
    while load.popen.poll() is None:
        now = time.monotonic() - started
        step.samples.append((now, *gateway.cpu_split(), gateway.rss_kb()))
        if step.profile and spy is None and now >= step.ramp + 2.0:
            spy = start_profile(gateway.popen.pid, step.seconds - step.ramp - 4.0, step.folder)
        time.sleep(0.25)
    load.stop()
    if spy is not None:
        spy.wait(timeout=30)
    ai_cpu = ai.cpu_seconds() - ai_cpu_start
    wall = time.monotonic() - started
    gateway_alive = gateway.popen.poll() is None
    gateway.stop()
    ai.stop()
    load_summary = json.loads("".join(load.lines[load.lines.index("{\n") :]))
    result = {
        "audio_format": step.audio_format,
        "calls": step.calls,
        **gateway_figures(step, idle_rss),
        **latency_figures(step.folder / "load.npz", step.folder / "ai.npz"),
        **summary_figures(gateway.lines),
        "violations": load_summary["violations"],
        "completed": load_summary["completed"],
        "failed": len(load_summary["failed"]),
        "hung_up_early": load_summary["hung_up_early"],
        "ended_by_gateway": load_summary["ended_by_gateway"],
        "declined": load_summary["declined"],
        "gateway_alive": gateway_alive,
        "load_cpu_share": round(load_summary["cpu_share"] + ai_cpu / wall, 3),
        "generator_tick_lateness_ms_p99": load_summary["tick_lateness_ms_p99"],
    }
    result["glitch_free"] = glitch_free(result)
    if spy is not None:
        result["profile_top"] = profile_top(step.folder / "gateway.folded")
    return result


# ---- profile ------------------------------------------------------------------------


def start_profile(pid: int, seconds: float, folder: Path) -> subprocess.Popen[bytes]:
    """py-spy samples the gateway over the steady window (from core 1, not the gateway's)."""
    spy = subprocess.Popen(
        [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--duration",
         str(max(1, int(seconds))), "--rate", "250", "--format", "raw", "--nolineno",
         "--output", str(folder / "gateway.folded")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    os.sched_setaffinity(spy.pid, {LOAD_CORE})
    return spy


def profile_top(folded: Path, count: int = 15) -> dict[str, list[tuple[str, float]]]:
    """The functions with the most samples: on top of the stack (self) and anywhere on it."""
    own: dict[str, int] = {}
    anywhere: dict[str, int] = {}
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = [_short(frame) for frame in stack.split(";") if frame]
        total += int(n)
        own[frames[-1]] = own.get(frames[-1], 0) + int(n)
        for frame in set(frames):
            anywhere[frame] = anywhere.get(frame, 0) + int(n)

    def top(counts: dict[str, int]) -> list[tuple[str, float]]:
        ranked = sorted(counts.items(), key=lambda item: -item[1])[:count]
        return [(name, round(100 * n / max(total, 1), 1)) for name, n in ranked]

    return {"self_percent": top(own), "total_percent": top(anywhere)}


def _short(frame: str) -> str:
    """`send (websockets/protocol.py)` -> `websockets/protocol.py:send`."""
    name, _, where = frame.partition(" (")
    return f"{where.rstrip(')')}:{name}" if where else name


def gateway_figures(step: Step, idle_rss: int) -> dict[str, Any]:
    """CPU per call-second and RSS per call over the window when all calls are up."""
    begin, end = step.ramp + 2.0, step.seconds - 1.0
    window = [s for s in step.samples if begin <= s[0] <= end]
    if len(window) < 2:
        raise RuntimeError("the steady window is empty: make --seconds longer than --ramp + 3")
    (t0, user0, kernel0, _), (t1, user1, kernel1, _) = window[0], window[-1]
    cpu = user1 - user0 + kernel1 - kernel0
    peak_rss = max(s[3] for s in window)
    return {
        "cpu_ms_per_call_second": round(cpu * 1000 / (step.calls * (t1 - t0)), 3),
        "gateway_cpu_share": round(cpu / (t1 - t0), 3),
        "gateway_kernel_share": round((kernel1 - kernel0) / max(cpu, 1e-9), 3),
        "rss_idle_mb": round(idle_rss / 1024, 1),
        "rss_kb_per_call": round((peak_rss - idle_rss) / step.calls, 1),
    }


def latency_figures(load_file: Path, ai_file: Path) -> dict[str, Any]:
    load, ai = np.load(load_file), np.load(ai_file)
    sessions = {int(ai[f"s{j}_call"]): j for j in range(int(ai["sessions"])) if len(ai[f"s{j}_appends"])}
    uplink, first_frames, lateness = [], [], []
    unmatched = 0
    for call in range(int(load["calls"])):
        if call not in sessions:
            unmatched += 1
            continue
        j = sessions[call]
        sent, appends = load[f"c{call}_sent"], ai[f"s{j}_appends"]
        n = min(len(sent), len(appends))
        uplink.append(appends[:n] - sent[:n])
        heard = load[f"c{call}_heard"]
        deltas, starts = ai[f"s{j}_deltas"], ai[f"s{j}_response_starts"]
        for segment, first_delta in zip(_segments(heard), starts, strict=False):
            first_frames.append(segment[0] - deltas[first_delta])
            lateness.append(_lateness(segment, deltas, int(first_delta)))
    return {
        "uplink_ms": _percentiles(np.concatenate(uplink) if uplink else np.array([])),
        "downlink_first_frame_ms": _percentiles(np.array(first_frames)),
        "pacing_lateness_ms": _percentiles(np.concatenate(lateness) if lateness else np.array([])),
        "calls_unmatched": unmatched,
    }


def _segments(heard: np.ndarray) -> list[np.ndarray]:
    """Frames heard, split into answers at silences of GAP_SECONDS."""
    if not len(heard):
        return []
    cuts = np.nonzero(np.diff(heard) > GAP_SECONDS)[0] + 1
    return np.split(heard, cuts)


def _lateness(segment: np.ndarray, deltas: np.ndarray, first_delta: int) -> np.ndarray:
    """Arrival of each frame beyond the lead minus when a perfect pacer would have sent it:
    frame q (q >= lead) once frame q - lead has played, 20 ms after it began, and not
    before the delta that carries it arrived."""
    q = np.arange(len(segment))
    delta_index = np.minimum(first_delta + q // 5, len(deltas) - 1)
    ideal = np.maximum(deltas[delta_index], segment[0] + (q - LEAD_FRAMES + 1) * 0.020)
    late: np.ndarray = np.maximum(0.0, segment - ideal)[LEAD_FRAMES:]
    return late


def _percentiles(seconds: np.ndarray) -> dict[str, float | int | None]:
    if not len(seconds):
        return {"p50": None, "p99": None, "max": None, "samples": 0}
    ms = seconds * 1000
    return {
        "p50": round(float(np.percentile(ms, 50)), 3),
        "p99": round(float(np.percentile(ms, 99)), 3),
        "max": round(float(ms.max()), 3),
        "samples": len(ms),
    }


def summary_figures(lines: list[str]) -> dict[str, Any]:
    summaries = [json.loads(line) for line in lines if '"call.summary"' in line]
    return {
        "summaries": len(summaries),
        "drops": sum(sum(s["drops"].values()) for s in summaries),
        "underruns": sum(s["underruns"] for s in summaries),
        "barge_ins": sum(s["barge_ins"] for s in summaries),
    }


def survived(result: dict[str, Any]) -> bool:
    """The step's floor, whatever the load: the process lived and ended no call itself."""
    return bool(result["gateway_alive"]) and result["ended_by_gateway"] == 0


def glitch_free(result: dict[str, Any]) -> bool:
    p99s = [result["uplink_ms"]["p99"], result["downlink_first_frame_ms"]["p99"]]
    return (
        survived(result)
        and result["completed"] == result["calls"]
        and result["drops"] == 0
        and result["underruns"] == 0
        and result["violations"] == 0
        and all(p is not None and p <= GLITCH_FREE_P99_MS for p in p99s)
    )


# ---- the run ------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", default="50,75,100,125,150,175,200,250,300,400,500,600,800")
    parser.add_argument("--formats", default="pcmu,pcm24k")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--ramp", type=float, default=5.0)
    parser.add_argument("--hangups", type=float, default=0.2, help="share of callers who hang up early")
    parser.add_argument("--interrupts", type=float, default=0.2, help="share who talk over the answers")
    parser.add_argument("--repeat", type=int, default=1, help="run each step this many times")
    parser.add_argument("--gateway-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra settings for the gateway (repeatable)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=REPO / "out" / "bench")
    parser.add_argument("--profile", action="store_true", help="sample the gateway with py-spy")
    args = parser.parse_args()
    results = []
    for audio_format in args.formats.split(","):
        for calls in (int(n) for n in args.steps.split(",")):
            extra = dict(setting.split("=", 1) for setting in args.gateway_env)
            repeats = []
            for run in range(args.repeat):
                folder = args.out / f"{audio_format}-{calls}" / f"run{run}"
                step = Step(audio_format, calls, args.seconds, args.ramp, folder, args.profile,
                            hangups=args.hangups, interrupts=args.interrupts, gateway_env=extra)  # fmt: skip
                result = run_step(step)
                repeats.append(result)
                results.append(result)
                print(json.dumps(result), flush=True)
            if not all(r["glitch_free"] for r in repeats) or any(
                r["load_cpu_share"] > LOAD_SIDE_SATURATED for r in repeats
            ):
                break
    report = {"machine": machine(), "seconds": args.seconds, "ramp": args.ramp, "steps": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "capacity.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "capacity.md").write_text(markdown(report))
    print(markdown(report))
    return 0


def machine() -> dict[str, Any]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"{m['cpu']}, {m['cores']} cores, Python {m['python']}, Linux {m['kernel']}; "
        f"gateway on one core, {report['seconds']:g} s calls",
        "",
        "| format | calls | gateway CPU | CPU ms / call-s | RSS KB / call | uplink p50 / p99 ms "
        "| downlink first frame p50 / p99 ms | pacing lateness p99 ms | drops | underruns | violations "
        "| complete | hung up early | ended by gateway | alive | load side CPU | glitch-free |",
        "| --- " + "| ---: " * 15 + "| --- |",
    ]
    for r in report["steps"]:
        up, down, late = r["uplink_ms"], r["downlink_first_frame_ms"], r["pacing_lateness_ms"]
        cells = [
            r["audio_format"], r["calls"], f"{r['gateway_cpu_share']:.0%}", r["cpu_ms_per_call_second"],
            r["rss_kb_per_call"], f"{up['p50']} / {up['p99']}", f"{down['p50']} / {down['p99']}", late["p99"],
            r["drops"], r["underruns"], r["violations"], f"{r['completed']}/{r['calls']}", r["hung_up_early"],
            r["ended_by_gateway"], "yes" if r["gateway_alive"] else "NO", f"{r['load_cpu_share']:.0%}",
            "yes" if r["glitch_free"] else "no",
        ]  # fmt: skip
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
