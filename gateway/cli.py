"""The `gateway` command: `run` serves; `simulate-call` plays Twilio for one call."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import trio

from gateway.admin import client as admin_client
from gateway.observability.logs import configure_logging
from gateway.process.serving import serve
from gateway.settings import (
    DEV_ADMIN_TOKEN,
    DEV_TWILIO_ACCOUNT_SID,
    DEV_TWILIO_AUTH_TOKEN,
    ConfigError,
    load_settings,
)
from gateway.simulator import cli as bench_cli
from gateway.simulator.audio import caller_phrase, read_wav, tone, write_wav
from gateway.simulator.caller import CallReport, CallScript, SimulationError, simulate_call


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway", description="Actor-model telephony gateway on Trio.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="serve Twilio calls (settings: --config file, then environment)")
    run.add_argument(
        "--config", type=Path, default=os.environ.get("GATEWAY_CONFIG"), help="TOML settings file"
    )
    run.set_defaults(handler=_run)

    simulate = commands.add_parser("simulate-call", help="call a running gateway the way Twilio does")
    simulate.add_argument("--url", default=_default_gateway_url(), help="the gateway's public base URL")
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

    _admin_commands(commands)
    bench_cli.add_commands(commands, _default_gateway_url())
    args = parser.parse_args(argv)
    handler = args.handler
    return int(handler(args))


def _admin_commands(commands: Any) -> None:
    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        command: argparse.ArgumentParser = commands.add_parser(name, help=help_text)
        command.add_argument("--url", default=_default_gateway_url(), help="the gateway's base URL")
        command.add_argument(
            "--token",
            default=os.environ.get("GATEWAY_ADMIN_TOKEN") or DEV_ADMIN_TOKEN,
            help="admin token (default: $GATEWAY_ADMIN_TOKEN or the development token)",
        )
        return command

    call = add("call", "place an outbound call through a running gateway")
    call.add_argument("to", help="E.164 number to call")
    call.add_argument("--from", dest="from_", help="caller ID (default: the gateway's GATEWAY_CALLER_ID)")
    call.set_defaults(handler=_call)
    calls = add("calls", "list a running gateway's calls")
    calls.add_argument("--all", action="store_true", help="include calls that ended recently")
    calls.set_defaults(handler=_calls)
    watch = add("watch", "print a running gateway's call events as they happen")
    watch.add_argument("--topic", action="append", help="topic pattern (repeatable; default: all)")
    watch.add_argument("--call", help="only this CallSid")
    watch.add_argument("--for", dest="seconds", type=float, help="stop after this many seconds")
    watch.set_defaults(handler=_watch)
    drain = add("drain", "stop a running gateway taking new calls (its live calls go on)")
    drain.add_argument("--wait", action="store_true", help="then wait until no call is in flight")
    drain.add_argument(
        "--max-seconds",
        type=float,
        default=float(os.environ.get("GATEWAY_DRAIN_SECONDS") or math.inf),
        help="stop waiting after this long; the calls go on (default: $GATEWAY_DRAIN_SECONDS)",
    )
    drain.set_defaults(handler=_drain)


def _call(args: argparse.Namespace) -> int:
    body = {"to": args.to, **({"from": args.from_} if args.from_ else {})}
    return _admin(
        lambda: admin_client.request(args.url, args.token, "POST", "/admin/calls", body),
        lambda call: f"placed {call['call_sid']} to {call['to_number']}: {call['state']}",
    )


def _calls(args: argparse.Namespace) -> int:
    path = "/admin/calls" if args.all else "/admin/calls?state=live"
    return _admin(
        lambda: admin_client.request(args.url, args.token, "GET", path),
        lambda data: admin_client.call_table(data["calls"]),
    )


def _watch(args: argparse.Namespace) -> int:
    topics = args.topic or ["*"]
    return _admin(lambda: admin_client.watch(args.url, args.token, topics, args.call, args.seconds), None)


def _drain(args: argparse.Namespace) -> int:
    return _admin(lambda: admin_client.drain(args.url, args.token, args.wait, args.max_seconds), None)


def _admin(operation: Any, show: Any) -> int:
    try:
        result = trio.run(operation)
    except admin_client.AdminError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    if show is not None:
        print(show(result))
    return 0


def _run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(
        settings.log_level,
        settings.log_format,
        instance=settings.instance_id,
        mask_numbers=settings.log_phone_numbers == "masked",
    )
    trio.run(serve, settings)
    return 0


def _default_gateway_url() -> str:
    return (
        os.environ.get("GATEWAY_PUBLIC_URL") or f"http://127.0.0.1:{os.environ.get('GATEWAY_PORT') or 8080}"
    )


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
        f"  media          sent {report.frames_sent}, received {report.media_received}",
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
