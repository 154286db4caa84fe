"""A deploy that moves live calls: two gateway processes on one Redis, calls on A, SIGTERM
to A; every call must move to B at a turn boundary and go on there.

Callers behave as people do: they arrive in a burst, some speak over the greeting, some
press keys, each lingers a different time after hearing the answer, and A's drain comes
while they are in every phase of their call. Twilio's side is the simulator, which
follows `<Connect action>` to B as a load balancer would send it. Prints, and writes to
out/bench/moves.json: calls moved, calls that ended cleanly, calls whose caller could
not finish (cut, or left waiting for an answer: must be 0), the gap each caller heard
between the old stream's close and the new one's start (p50, p99, max), and how long A
took to hand everything over and exit.

    python ops/bench/moves.py --calls 50
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

import trio
from processes import GATEWAY, GATEWAY_CORE, LOAD_CORE, REPO, Process, base_env, free_port

from gateway.settings import DEV_TWILIO_ACCOUNT_SID, DEV_TWILIO_AUTH_TOKEN
from gateway.simulator.audio import caller_phrase
from gateway.simulator.caller import CallReport, CallScript, simulate_call

TOKEN_KEY = "moves-bench-" + "k" * 32


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--drain-after", type=float, default=5.0, help="seconds after the burst")
    parser.add_argument("--out", type=Path, default=REPO / "out" / "bench")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    redis = Process(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        LOAD_CORE, base_env(), args.out / "moves-redis.log",
    )  # fmt: skip
    redis.wait_listening(port, 10)
    a, b = (gateway(name, port, args) for name in ("a", "b"))
    urls = [_url(process) for process in (a, b)]
    try:
        report = trio.run(run, a, urls, args)
    finally:
        for process in (b, a, redis):
            process.stop()
    (args.out / "moves.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    moved_or_done = report["moved"] + report["finished_before_the_drain"]
    return 0 if report["unfinished"] == 0 and moved_or_done == report["calls"] else 1


def gateway(name: str, redis_port: int, args: argparse.Namespace) -> Process:
    env = {
        **base_env(), "GATEWAY_PORT": "0", "GATEWAY_LOG_FORMAT": "json", "GATEWAY_INSTANCE_ID": name,
        "GATEWAY_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "GATEWAY_STREAM_TOKEN_KEY": TOKEN_KEY,
        "GATEWAY_DRAIN_SECONDS": "120", "GATEWAY_MAX_CALLS": str(args.calls * 2),
        "GATEWAY_MAX_LOOP_LAG_MS": "0", "GATEWAY_MAX_CPU_SHARE": "0",
    }  # fmt: skip
    return Process([*GATEWAY, "run", "--config", "config/default.toml"], GATEWAY_CORE, env,
                   args.out / f"moves-{name}.log")  # fmt: skip


def _url(process: Process) -> str:
    line = process.wait_for('"gateway.started"', 30)
    return str(json.loads(line)["voice_webhook"]).removesuffix("/twilio/voice")


def script(rng: random.Random) -> CallScript:
    return CallScript(
        utterance=caller_phrase(),
        interrupt_after_ms=rng.choice([None, None, None, None, 800.0]),  # 1 in 5 speak over the greeting
        dtmf=((rng.uniform(2, 8), "5"),) if rng.random() < 0.3 else (),
        quiet_after_answer_ms=rng.uniform(4000, 15000),
        max_seconds=90,
    )


async def run(a: Process, urls: list[str], args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(7)
    reports: list[CallReport] = []

    async def call(delay: float) -> None:
        await trio.sleep(delay)
        result = await simulate_call(urls[0], DEV_TWILIO_AUTH_TOKEN, DEV_TWILIO_ACCOUNT_SID, script(rng),
                                     action_base=urls[1])  # fmt: skip
        reports.append(result)

    drain_at = time.monotonic()
    async with trio.open_nursery() as nursery:
        for _ in range(args.calls):
            nursery.start_soon(call, rng.uniform(0, 2.0))  # a burst over two seconds
        await trio.sleep(2.0 + args.drain_after)
        drain_at = time.monotonic()
        a.popen.send_signal(15)  # SIGTERM, as a deploy sends it
        a_exited = await trio.to_thread.run_sync(a.popen.wait)
        handed_over_s = time.monotonic() - drain_at
    return summarise(reports, a_exited, handed_over_s, args)


def summarise(reports: list[CallReport], a_exit: int, handed_over_s: float, args: argparse.Namespace) -> dict:
    gaps = sorted(gap for r in reports for gap in r.move_gaps_ms)
    return {
        "calls": len(reports),
        "moved": sum(r.moves == 1 for r in reports),
        "ended_cleanly": sum(r.ended_cleanly for r in reports),
        "finished_before_the_drain": sum(r.moves == 0 and r.completed for r in reports),
        "unfinished": sum(not r.completed for r in reports),  # cut or left waiting: must be 0
        "violations": sum(len(r.violations) for r in reports),
        "move_gap_ms": {
            "p50": round(statistics.median(gaps), 1) if gaps else None,
            "p99": round(gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))], 1) if gaps else None,
            "max": round(gaps[-1], 1) if gaps else None,
        },
        "a_handed_over_and_exited_s": round(handed_over_s, 2),
        "a_exit_status": a_exit,
        "drain_after_s": args.drain_after,
        "not_completed": [
            {
                "call_sid": r.call_sid,
                "moves": r.moves,
                "close_code": r.close_code,
                "close_reason": r.close_reason,
                "duration_s": round(r.duration_s, 1),
            }
            for r in reports
            if not r.completed
        ],
    }


if __name__ == "__main__":
    raise SystemExit(main())
