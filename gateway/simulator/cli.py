"""The simulator's commands: `gateway simulate-call`, `simulate-load` and `bench-ai`.

`simulate-call` plays Twilio for one call against a running gateway and prints what the
caller heard. `simulate-load` places many simulated Twilio calls from one process and
prints a JSON summary (with its own CPU use); `bench-ai` serves the cheap realtime AI the
benchmark points the gateway at, and writes its records on SIGTERM or SIGINT.
`ops/bench/capacity.py` runs both against a gateway process.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import ssl
import sys
from functools import partial
from pathlib import Path
from typing import Any

import trio

from actors.realtime import AudioFormat
from gateway.settings import DEV_TWILIO_ACCOUNT_SID, DEV_TWILIO_AUTH_TOKEN
from gateway.simulator.audio import caller_phrase, read_wav, tone, write_wav
from gateway.simulator.bench_ai import BenchAI
from gateway.simulator.caller import CallReport, CallScript, SimulationError, simulate_call
from gateway.simulator.load import LoadGenerator, LoadPlan
from gateway.simulator.load_audio import MAX_CALLS


def add_commands(commands: Any, default_url: str) -> None:
    simulate = commands.add_parser("simulate-call", help="call a running gateway the way Twilio does")
    simulate.add_argument("--url", default=default_url, help="the gateway's public base URL")
    simulate.add_argument(
        "--auth-token",
        default=os.environ.get("TWILIO_AUTH_TOKEN") or DEV_TWILIO_AUTH_TOKEN,
        help="Twilio auth token to sign with (default: $TWILIO_AUTH_TOKEN or the dev token)",
    )
    simulate.add_argument(
        "--account-sid", default=os.environ.get("TWILIO_ACCOUNT_SID") or DEV_TWILIO_ACCOUNT_SID
    )
    source = simulate.add_mutually_exclusive_group()
    source.add_argument(
        "--say", type=Path, help="16-bit PCM WAV the caller says (default: a spoken test phrase)"
    )
    source.add_argument("--tone", type=float, metavar="HZ", help="say a 1.5 s tone instead")
    source.add_argument("--no-speech", action="store_true", help="say nothing (press keys with --dtmf)")
    simulate.add_argument(
        "--dtmf",
        action="append",
        default=[],
        metavar="SECONDS:KEY",
        help="press KEY at SECONDS after the stream starts (repeatable)",
    )
    simulate.add_argument("--record", type=Path, help="write what the caller heard to this WAV file")
    simulate.add_argument("--max-seconds", type=float, default=40.0, help="hang up after this long at most")
    simulate.add_argument("--json", action="store_true", help="print the report as JSON")
    simulate.set_defaults(handler=_simulate)

    load = commands.add_parser("simulate-load", help="many simulated Twilio calls at once, from one process")
    load.add_argument("--url", default=default_url, help="the gateway's public base URL")
    load.add_argument("--auth-token", default=os.environ.get("TWILIO_AUTH_TOKEN") or DEV_TWILIO_AUTH_TOKEN)
    load.add_argument("--account-sid", default=os.environ.get("TWILIO_ACCOUNT_SID") or DEV_TWILIO_ACCOUNT_SID)
    load.add_argument("--calls", type=int, default=10, help=f"concurrent calls (at most {MAX_CALLS})")
    load.add_argument("--seconds", type=float, default=20.0, help="length of each call")
    load.add_argument("--ramp", type=float, default=5.0, help="start the calls evenly over this long")
    load.add_argument("--hangups", type=float, default=0.0, help="share of callers who hang up early")
    load.add_argument("--interrupts", type=float, default=0.0, help="share of callers who talk over answers")
    load.add_argument("--seed", type=int, default=1, help="which callers do what")
    load.add_argument(
        "--public-url", default="", help="the URL Twilio signs, when the server listens elsewhere (--url)"
    )
    load.add_argument("--out", type=Path, help="write per-frame send and receive times (.npz)")
    load.set_defaults(handler=_simulate_load)

    ai = commands.add_parser("bench-ai", help="serve the benchmark's realtime AI until SIGTERM")
    ai.add_argument("--port", type=int, default=0)
    ai.add_argument("--format", choices=["pcmu", "pcm24k"], default="pcmu")
    ai.add_argument("--api-key", required=True)
    ai.add_argument("--reply-seconds", type=float, default=2.0)
    ai.add_argument("--speed", type=float, default=4.0, help="how much faster than real time replies stream")
    ai.add_argument("--out", type=Path, required=True, help="where to write the session records (.npz)")
    ai.add_argument("--greet", action="store_true", help="speak first when a session is configured")
    ai.add_argument("--tls-cert", type=Path, help="serve wss:// with this certificate (PEM)")
    ai.add_argument("--tls-key", type=Path, help="the certificate's private key (PEM)")
    ai.set_defaults(handler=_bench_ai)


def _simulate_load(args: argparse.Namespace) -> int:
    if not 1 <= args.calls <= MAX_CALLS:
        print(f"gateway simulate-load: --calls must be 1 to {MAX_CALLS}", file=sys.stderr)
        return 2
    plan = LoadPlan(
        args.url, args.auth_token, args.account_sid, args.calls, args.seconds, args.ramp,
        hangups=args.hangups, interrupts=args.interrupts, seed=args.seed, public_url=args.public_url,
    )  # fmt: skip
    generator = LoadGenerator(plan)
    trio.run(generator.run)
    if args.out:
        generator.dump(args.out)
    summary = generator.summary()
    print(json.dumps(summary, indent=2))
    clean = (
        summary["completed"] == args.calls and not summary["violations"] and not summary["ended_by_gateway"]
    )
    return 0 if clean else 1


def _bench_ai(args: argparse.Namespace) -> int:
    tls = None
    if args.tls_cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    ai = BenchAI(
        AudioFormat(args.format), args.api_key, args.reply_seconds, args.speed, greet=args.greet, tls=tls
    )
    trio.run(_serve_until_signal, ai, args.port)
    ai.dump(args.out)
    return 0


async def _serve_until_signal(ai: BenchAI, port: int) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(partial(ai.serve, port))
            print(json.dumps({"port": bound}), flush=True)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


def _simulate(args: argparse.Namespace) -> int:
    try:
        utterance = _utterance(args)
        dtmf = tuple(_dtmf(spec) for spec in args.dtmf)
    except (OSError, ValueError) as exc:
        print(f"gateway simulate-call: {exc}", file=sys.stderr)
        return 2
    script = CallScript(utterance=utterance, dtmf=dtmf, max_seconds=args.max_seconds)
    try:
        report = trio.run(simulate_call, args.url, args.auth_token, args.account_sid, script)
    except SimulationError as exc:
        print(f"gateway simulate-call: {exc}", file=sys.stderr)
        return 2
    if args.record:
        args.record.parent.mkdir(parents=True, exist_ok=True)
        write_wav(args.record, report.heard)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(_summary(report, args.record))
    return 0 if report.ended_cleanly else 1


def _utterance(args: argparse.Namespace) -> bytes:
    if args.no_speech:
        return b""
    if args.say:
        return read_wav(args.say)
    return tone(args.tone, 1.5) if args.tone else caller_phrase()


def _dtmf(spec: str) -> tuple[float, str]:
    seconds, _, key = spec.partition(":")
    if len(key) != 1 or key not in "0123456789*#ABCD":
        raise ValueError(f"--dtmf {spec!r}: expected SECONDS:KEY, e.g. 3.5:7")
    return float(seconds), key


def _summary(report: CallReport, record: Path | None) -> str:
    if report.completed:
        outcome = "completed"
    elif report.close_code == 1000:
        outcome = "ended by the gateway"
    else:
        outcome = "did NOT complete"
    latency = f"{report.answer_latency_ms:.0f} ms" if report.answer_latency_ms is not None else "n/a"
    lines = [
        f"call {report.call_sid}  stream {report.stream_sid}",
        f"  stream url     {report.stream_url}",
        f"  script         {outcome} in {report.duration_s:.1f} s",
        f"  greeting       {report.greeting_ms / 1000:.1f} s of audio heard",
        f"  answer         {report.answer_ms / 1000:.1f} s of audio heard, first byte {latency} "
        "after the caller's last frame",
        f"  media          sent {report.frames_sent} frames, received {report.frames_received} frames"
        f" in {report.media_received} messages",
        f"  marks          received {report.marks_received}, echoed {report.mark_echoes_sent}",
        f"  clears         {report.clears_received} "
        f"({report.cleared_ms / 1000:.1f} s of unplayed audio dropped)",
        f"  violations     {len(report.violations)}",
        *(f"    {v.code}: {v.reason}" for v in report.violations[:10]),
        f"  stream closed  {report.close_code} {report.close_reason}".rstrip(),
    ]
    if record:
        lines.append(f"  recording      {record}")
    return "\n".join(lines)
