"""py-spy over the server under test during a benchmark's steady window, and its top entries;
tracemalloc's snapshots of the gateway (idle, then under load), and what each call holds."""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

from processes import LOAD_CORE


def start_profile(pid: int, seconds: float, folder: Path) -> subprocess.Popen[bytes]:
    """py-spy samples the process (from core 1, not the server's) into server.folded."""
    spy = subprocess.Popen(
        [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--duration",
         str(max(1, int(seconds))), "--rate", "250", "--format", "raw", "--nolineno",
         "--output", str(folder / "server.folded")],
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


def memory_top(folder: Path, calls: int, count: int = 15) -> dict[str, Any]:
    """What the gateway holds under load beyond what it held idle, per call, by the line
    that allocated it and by the file (`traced_gateway.py` wrote the two snapshots)."""
    idle = tracemalloc.Snapshot.load(str(folder / "snapshot-0.tracemalloc"))
    loaded = tracemalloc.Snapshot.load(str(folder / "snapshot-1.tracemalloc"))
    keep = [tracemalloc.Filter(False, tracemalloc.__file__)]
    idle, loaded = idle.filter_traces(keep), loaded.filter_traces(keep)

    def top(key: str) -> list[tuple[str, float, int]]:
        diffs = loaded.compare_to(idle, key)
        return [
            (_where(diff.traceback), round(diff.size_diff / calls / 1024, 2), round(diff.count_diff / calls))
            for diff in diffs[:count]
        ]

    total = sum(d.size_diff for d in loaded.compare_to(idle, "filename"))
    return {"traced_kb_per_call": round(total / calls / 1024, 1), "by_line": top("lineno"),
            "by_file": top("filename")}  # fmt: skip


def _where(traceback: tracemalloc.Traceback) -> str:
    frame = traceback[0]
    parts = Path(frame.filename).parts
    short = "/".join(parts[-2:])
    return f"{short}:{frame.lineno}"
