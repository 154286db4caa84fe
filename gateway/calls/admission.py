"""Admission control: whether this process takes one more call.

A call is in flight from the moment its webhook is answered with a stream (its one-time
token is outstanding) until its supervisor ends. Past `GATEWAY_MAX_CALLS` in flight, or
once draining, or while the process is overloaded (event-loop lag or CPU past their
limits), the voice webhook answers TwiML that declines politely and the refusal is
counted; `/readyz` answers 503 for the same reasons, so a load balancer sends new calls
elsewhere. Live calls are never refused anything.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from gateway.calls.drain import Drain
from gateway.calls.live import LiveCalls


class Refusal(StrEnum):
    DRAINING = "draining"
    AT_CAPACITY = "at_capacity"
    OVERLOADED = "overloaded"


class Admission:
    def __init__(
        self,
        max_calls: int,
        calls: LiveCalls,
        answered: Callable[[], int],
        drain: Drain,
        overloaded: Callable[[], str | None] = lambda: None,
    ) -> None:
        """`answered()` counts calls answered with a stream that has not arrived yet;
        `overloaded()` says why the process is too busy for one more, if it is."""
        self.max_calls = max_calls
        self._calls = calls
        self._answered = answered
        self._overloaded = overloaded
        self.drain = drain

    @property
    def in_flight(self) -> int:
        """Calls live here plus calls answered whose media stream has not arrived yet."""
        return len(self._calls) + self._answered()

    def refusal(self) -> Refusal | None:
        """Why a new call would be declined now, or None if it would be taken."""
        if self.drain.draining:
            return Refusal.DRAINING
        if self.in_flight >= self.max_calls:
            return Refusal.AT_CAPACITY
        if self._overloaded() is not None:
            return Refusal.OVERLOADED
        return None

    def overload(self) -> str | None:
        """Why the process counts as overloaded now, or None."""
        return self._overloaded()

    def ready(self) -> bool:
        return self.refusal() is None
