"""Draining: the process keeps its live calls and takes no new ones."""

from __future__ import annotations

import time

import structlog

log = structlog.get_logger("gateway.drain")


class Drain:
    def __init__(self) -> None:
        self.draining = False
        self.started_at: float | None = None

    def start(self) -> bool:
        """Stop taking calls; True the first time."""
        if self.draining:
            return False
        self.draining = True
        self.started_at = time.time()
        log.info("gateway.draining")
        return True
