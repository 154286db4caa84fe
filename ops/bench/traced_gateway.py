"""The gateway with tracemalloc on: each SIGUSR1 writes a snapshot (bench --memory).

Run as `python ops/bench/traced_gateway.py run --config ...` (the gateway's own arguments);
snapshots go to $TRACEMALLOC_DIR/snapshot-<n>.tracemalloc, n counting from 0.
"""

from __future__ import annotations

import os
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType

from gateway.cli import main as gateway

FRAMES = 6


def main() -> int:
    folder = Path(os.environ["TRACEMALLOC_DIR"])
    taken = 0

    def snapshot(signum: int, frame: FrameType | None) -> None:
        nonlocal taken
        tracemalloc.take_snapshot().dump(str(folder / f"snapshot-{taken}.tracemalloc"))
        taken += 1
        print(f'{{"event": "tracemalloc.snapshot", "n": {taken}}}', flush=True)

    tracemalloc.start(FRAMES)
    signal.signal(signal.SIGUSR1, snapshot)
    return gateway(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
