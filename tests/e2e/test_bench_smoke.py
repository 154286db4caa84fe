"""The capacity benchmark, in small: it must keep working, whatever its figures.

`make bench` runs ops/bench/capacity.py with hundreds of calls; here the same runner
plays a handful of calls for a few seconds in both audio formats, with its three real
processes (gateway, benchmark AI, load generator). Timings are not asserted (CI shares
its cores); behaviour is: every call completes (half of the callers hang up early, of
every kind, a quarter talk over the answers) and is summarised once, the gateway stays
up and ends no call itself, no protocol violation, every call's audio is matched both
ways, and the report is written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CALLS = 8


def test_the_capacity_benchmark_runs_calls_end_to_end_in_both_formats(tmp_path):
    run = subprocess.run(
        [sys.executable, "ops/bench/capacity.py", "--steps", str(CALLS), "--formats", "pcmu,pcm24k",
         "--seconds", "6", "--ramp", "1", "--hangups", "0.5", "--interrupts", "0.25", "--out", str(tmp_path),
         "--gateway-env", "GATEWAY_MAX_LOOP_LAG_MS=0", "--gateway-env", "GATEWAY_MAX_CPU_SHARE=0"],
        cwd=REPO, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((tmp_path / "capacity.json").read_text())
    assert [step["audio_format"] for step in report["steps"]] == ["pcmu", "pcm24k"]
    for step in report["steps"]:
        assert step["completed"] == CALLS, step
        assert step["hung_up_early"] == CALLS // 2, step
        assert (step["ended_by_gateway"], step["gateway_alive"]) == (0, True), step
        assert step["failed"] == 0, step
        assert step["violations"] == 0, step
        assert step["summaries"] == CALLS, step  # one summary record per call
        assert step["calls_unmatched"] == 0, step  # every AI session traced to its call
        assert step["uplink_ms"]["samples"] > CALLS * 100, step  # 20 ms frames, early hang-ups aside
        assert step["downlink_first_frame_ms"]["samples"] >= CALLS, step  # the greeting at least
        assert step["cpu_ms_per_call_second"] > 0, step
    table = (tmp_path / "capacity.md").read_text()
    assert f"| pcmu | {CALLS} |" in table
    assert f"| pcm24k | {CALLS} |" in table
