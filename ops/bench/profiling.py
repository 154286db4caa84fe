"""py-spy over the server under test during a benchmark's steady window, and its top entries."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
