"""Call events for whoever watches (operators, dashboards): published, never waited on.

Actors publish what happens on their call (transcripts, barge-ins, keypad entries); the
supervisor publishes the call starting and ending. A sink must never block and never
fail: a slow or stuck watcher may lose events, a call never slows down for one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class CallEvents(Protocol):
    def publish(self, topic: str, data: Mapping[str, Any]) -> None:
        """Hand an event on without blocking; the sink adds which call it belongs to."""
        ...


class NoEvents:
    """A sink for calls nobody watches (and for tests)."""

    def publish(self, topic: str, data: Mapping[str, Any]) -> None:
        return None
