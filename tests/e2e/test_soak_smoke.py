"""The soak, in small: two minutes of calls with churn through a real gateway process.

`make soak` runs ops/bench/soak.py for half an hour and reports growth; here the same
runner plays two minutes of overlapping waves of calls. Behaviour, not figures: the
gateway lives, ends no call itself, writes a summary for every call, and once the last
call is over it holds no more descriptors or tasks than before the first one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# CI machines are shared: admission by load would rightly decline calls there, which is not
# what this test is about (tests/integration/test_operations.py covers it).
NO_LOAD_ADMISSION = ["--gateway-env", "GATEWAY_MAX_LOOP_LAG_MS=0", "--gateway-env", "GATEWAY_MAX_CPU_SHARE=0"]


def test_two_minutes_of_churn_leave_the_gateway_as_it_was(tmp_path):
    run = subprocess.run(
        [sys.executable, "ops/bench/soak.py", "--minutes", "2", "--calls", "12", "--call-seconds", "10",
         "--sample-seconds", "10", "--out", str(tmp_path), *NO_LOAD_ADMISSION],
        cwd=REPO, capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((tmp_path / "soak.json").read_text())
    assert report["gateway_alive"]
    assert report["calls_placed"] >= 12 * 10
    assert report["calls_completed"] == report["calls_placed"]
    assert (report["ended_by_gateway"], report["declined"]) == (0, 0)
    assert report["summaries"] == report["calls_placed"]
    before, after = report["idle_before"], report["idle_after"]
    assert after["live_calls"] == 0
    assert after["fds"] <= before["fds"]
    assert after["tasks"] <= before["tasks"]
