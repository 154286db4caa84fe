"""The call registry: every call's state, for operators and the admin API.

In memory for one process, behind the `CallRegistry` protocol; a fleet's registry in Redis
(`gateway.fleet.registry`) implements the same protocol and raises `RegistryUnavailable`
when Redis cannot be reached. States:

    ringing     an outbound call placed through Twilio, not answered yet
    connecting  Twilio fetched our TwiML; the media stream is not up yet
    live        the media stream runs; the AI is on the call
    ending      an operator asked for a hang-up or transfer
    ended       over; `end_reason` says why (a Twilio status or the gateway's end reason)

Ended calls are kept for `retention_seconds` so a finished call can still be looked up.
"""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class CallState(StrEnum):
    RINGING = "ringing"
    CONNECTING = "connecting"
    LIVE = "live"
    ENDING = "ending"
    ENDED = "ended"


@dataclass(frozen=True)
class CallRecord:
    call_sid: str
    direction: str  # "inbound" or "outbound"
    state: CallState
    from_number: str
    to_number: str
    instance: str
    created_at: float  # Unix time
    stream_sid: str = ""
    answered_at: float | None = None  # our voice webhook answered with a stream
    live_at: float | None = None
    ended_at: float | None = None
    end_reason: str = ""
    twilio_status: str = ""

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["state"] = self.state.value
        return data


class RegistryUnavailable(Exception):
    """The shared registry (Redis, in a fleet) could not be reached; the message says why.
    Calls go on without their records being written; operators get a 503."""


class CallRegistry(Protocol):
    async def put(self, record: CallRecord) -> None: ...

    async def get(self, call_sid: str) -> CallRecord | None: ...

    async def update(self, call_sid: str, **changes: Any) -> CallRecord | None: ...

    async def list(self, *, state: str | None = None, direction: str | None = None) -> list[CallRecord]: ...


class InMemoryRegistry:
    """The registry of one process. Bounded without ever sorting: ended records are kept in
    the order they ended and forgotten from the front (past `retention_seconds`, or beyond
    `max_ended`); a call that waits too long for what comes next (an answered call whose
    stream never arrives, an outbound call whose status never comes) is ended as
    `no_stream` or `no_status` instead of staying `connecting`, `ringing` or `ending` forever."""

    def __init__(
        self,
        retention_seconds: float = 3600.0,
        max_ended: int = 10_000,
        *,
        connecting_limit_s: float = 120.0,
        ringing_limit_s: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._records: dict[str, CallRecord] = {}
        self._ended: OrderedDict[str, float] = OrderedDict()  # call -> ended_at, in ending order
        # Calls ringing or connecting, each state's in the order they entered it: call -> since.
        self._waiting: dict[CallState, OrderedDict[str, float]] = {
            CallState.CONNECTING: OrderedDict(),
            CallState.RINGING: OrderedDict(),
            CallState.ENDING: OrderedDict(),
        }
        self._retention = retention_seconds
        self._max_ended = max_ended
        self._limits = {
            CallState.CONNECTING: connecting_limit_s,
            CallState.RINGING: ringing_limit_s,
            CallState.ENDING: ringing_limit_s,  # a hang-up whose final status never came
        }
        self._clock = clock

    async def put(self, record: CallRecord) -> None:
        self._store(record)
        self._sweep()

    async def get(self, call_sid: str) -> CallRecord | None:
        return self._records.get(call_sid)

    async def update(self, call_sid: str, **changes: Any) -> CallRecord | None:
        record = self._records.get(call_sid)
        if record is None:
            return None
        now = self._clock()
        if changes.get("state") is CallState.ENDED and record.ended_at is None:
            changes.setdefault("ended_at", now)
        if changes.get("state") is CallState.LIVE and record.live_at is None:
            changes.setdefault("live_at", now)
        record = dataclasses.replace(record, **changes)
        self._store(record)
        self._sweep()
        return record

    async def list(self, *, state: str | None = None, direction: str | None = None) -> list[CallRecord]:
        return [
            record
            for record in self._records.values()
            if (state is None or record.state == state)
            and (direction is None or record.direction == direction)
        ]

    def __len__(self) -> int:
        return len(self._records)

    def _store(self, record: CallRecord) -> None:
        sid = record.call_sid
        previous = self._records.get(sid)
        self._records[sid] = record
        left = self._waiting.get(previous.state) if previous and previous.state is not record.state else None
        if left is not None:
            left.pop(sid, None)
        if record.state in self._waiting and sid not in self._waiting[record.state]:
            self._waiting[record.state][sid] = self._clock()
        if record.state is CallState.ENDED and sid not in self._ended:
            self._ended[sid] = record.ended_at or self._clock()
        elif record.state is not CallState.ENDED:
            self._ended.pop(sid, None)  # back from ended (a webhook for it again): not to be forgotten

    def _sweep(self) -> None:
        now = self._clock()
        self._end_stale(now)
        cutoff = now - self._retention
        while self._ended:
            sid, ended_at = next(iter(self._ended.items()))
            if ended_at >= cutoff and len(self._ended) <= self._max_ended:
                break
            del self._ended[sid]
            self._records.pop(sid, None)

    def _end_stale(self, now: float) -> None:
        for state, waiting in self._waiting.items():
            while waiting:
                sid, since = next(iter(waiting.items()))
                if now - since < self._limits[state]:
                    break
                reason = "no_stream" if state is CallState.CONNECTING else "no_status"
                record = self._records[sid]
                self._store(
                    dataclasses.replace(record, state=CallState.ENDED, ended_at=now, end_reason=reason)
                )
