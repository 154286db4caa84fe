"""Draining: the process keeps its live calls and takes no new ones.

An operator starts a drain over the admin API (the process stays up, e.g. before a
rollout); SIGTERM starts one too, with a deadline after which the remaining calls are
ended in order (see `gateway.process.serving`).
"""

from __future__ import annotations

import time

import structlog
import trio

log = structlog.get_logger("gateway.calls.drain")


class Drain:
    def __init__(self) -> None:
        self.draining = False
        self.started_at: float | None = None
        self.started = trio.Event()

    def start(self, trigger: str, live_calls: int, deadline_s: float | None = None) -> bool:
        """Stop taking calls; True the first time."""
        if self.draining:
            return False
        self.draining = True
        self.started_at = time.time()
        self.started.set()
        log.info("gateway.draining", trigger=trigger, live_calls=live_calls, deadline_s=deadline_s)
        return True

    def remaining(self, deadline_s: float) -> float:
        """Seconds left of a deadline counted from when the drain began (a preStop hook may have
        begun it well before SIGTERM came)."""
        started = self.started_at if self.started_at is not None else time.time()
        return max(0.0, started + deadline_s - time.time())
