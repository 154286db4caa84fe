"""The benchmark side of the CLI: `gateway simulate-load` and `gateway bench-ai`.

`simulate-load` places many simulated Twilio calls against a running gateway from one
process and prints a JSON summary (with its own CPU use); `bench-ai` serves the cheap
realtime AI the benchmark points the gateway at, and writes its records on SIGTERM or
SIGINT. `ops/bench/capacity.py` runs both against a gateway process.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from functools import partial
from pathlib import Path
from typing import Any

import trio

from actors.realtime import AudioFormat
from gateway.settings import DEV_TWILIO_ACCOUNT_SID, DEV_TWILIO_AUTH_TOKEN
from gateway.simulator.bench_ai import BenchAI
from gateway.simulator.load import LoadGenerator, LoadPlan
from gateway.simulator.load_audio import MAX_CALLS


def add_commands(commands: Any, default_url: str) -> None:
    load = commands.add_parser("simulate-load", help="many simulated Twilio calls at once, from one process")
    load.add_argument("--url", default=default_url, help="the gateway's public base URL")
    load.add_argument("--auth-token", default=os.environ.get("TWILIO_AUTH_TOKEN") or DEV_TWILIO_AUTH_TOKEN)
    load.add_argument("--account-sid", default=os.environ.get("TWILIO_ACCOUNT_SID") or DEV_TWILIO_ACCOUNT_SID)
    load.add_argument("--calls", type=int, default=10, help=f"concurrent calls (at most {MAX_CALLS})")
    load.add_argument("--seconds", type=float, default=20.0, help="length of each call")
    load.add_argument("--ramp", type=float, default=5.0, help="start the calls evenly over this long")
    load.add_argument("--out", type=Path, help="write per-frame send and receive times (.npz)")
    load.set_defaults(handler=_simulate_load)

    ai = commands.add_parser("bench-ai", help="serve the benchmark's realtime AI until SIGTERM")
    ai.add_argument("--port", type=int, default=0)
    ai.add_argument("--format", choices=["pcmu", "pcm24k"], default="pcmu")
    ai.add_argument("--api-key", required=True)
    ai.add_argument("--reply-seconds", type=float, default=2.0)
    ai.add_argument("--speed", type=float, default=4.0, help="how much faster than real time replies stream")
    ai.add_argument("--out", type=Path, required=True, help="where to write the session records (.npz)")
    ai.set_defaults(handler=_bench_ai)


def _simulate_load(args: argparse.Namespace) -> int:
    if not 1 <= args.calls <= MAX_CALLS:
        print(f"gateway simulate-load: --calls must be 1 to {MAX_CALLS}", file=sys.stderr)
        return 2
    plan = LoadPlan(args.url, args.auth_token, args.account_sid, args.calls, args.seconds, args.ramp)
    generator = LoadGenerator(plan)
    trio.run(generator.run)
    if args.out:
        generator.dump(args.out)
    summary = generator.summary()
    print(json.dumps(summary, indent=2))
    return 0 if summary["completed"] == args.calls and not summary["violations"] else 1


def _bench_ai(args: argparse.Namespace) -> int:
    ai = BenchAI(AudioFormat(args.format), args.api_key, args.reply_seconds, args.speed)
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
