"""The capacity benchmark, in small: it must keep working, whatever its figures.

`make bench` runs ops/bench/capacity.py with hundreds of calls, the gateway side by side
with the yardstick relay; here the same runner plays a handful of calls for a few
seconds against the gateway alone (the relay is not ours, and nothing in the tests needs
it), in both audio formats and over both AI legs (`ws://`, and `wss://` to the benchmark
AI's self-signed TLS), with its three real processes (gateway, benchmark AI, load
generator). Timings are not asserted (CI shares its cores); behaviour is: every call
completes (half of the callers hang up early, of every kind, a quarter talk over the
answers) and is summarised once, the gateway stays up and ends no call itself, no
protocol violation, every call's audio is matched both ways, the barge-ins are cleared
and truncated and measured, and the report is written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CALLS = 8


def test_the_capacity_benchmark_runs_calls_end_to_end_in_both_formats_and_over_both_ai_legs(tmp_path):
    run = subprocess.run(
        [sys.executable, "ops/bench/capacity.py", "--steps", str(CALLS), "--subjects", "gateway",
         "--formats", "pcmu,pcm24k", "--transports", "ws,wss", "--seconds", "6", "--ramp", "1",
         "--hangups", "0.5", "--interrupts", "0.25", "--out", str(tmp_path),
         "--gateway-env", "GATEWAY_MAX_LOOP_LAG_MS=0", "--gateway-env", "GATEWAY_MAX_CPU_SHARE=0"],
        cwd=REPO, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((tmp_path / "capacity.json").read_text())
    legs = [(step["audio_format"], step["transport"]) for step in report["steps"]]
    assert legs == [("pcmu", "ws"), ("pcmu", "wss"), ("pcm24k", "ws"), ("pcm24k", "wss")]
    for step in report["steps"]:
        assert step["completed"] == CALLS, step
        assert step["hung_up_early"] == CALLS // 2, step
        assert (step["ended_by_gateway"], step["gateway_alive"]) == (0, True), step
        assert step["failed"] == 0, step
        assert step["violations"] == 0, step
        assert step["summaries"] == CALLS, step  # one summary record per call
        assert step["calls_unmatched"] == 0, step  # every AI session traced to its call
        assert step["uplink_ms"]["samples"] > CALLS * 100, step  # 20 ms frames, early hang-ups aside
        assert step["downlink_first_audio_ms"]["samples"] >= CALLS, step  # the greeting at least
        assert step["clear_ms"]["samples"] >= 1, step  # the interrupting callers were cleared
        assert step["truncation_error_ms"]["samples"] >= 1, step  # and what they heard was truncated
        assert step["messages_per_call_second"]["up_media"] > 0, step
        assert step["cpu_ms_per_call_second"] > 0, step
    table = (tmp_path / "capacity.md").read_text()
    assert f"| gateway | pcmu | wss | {CALLS} |" in table
    assert f"| gateway | pcm24k | ws | {CALLS} |" in table
