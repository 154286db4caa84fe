"""The call registry: every call's state, for operators and the admin API.

In memory, behind the `CallRegistry` protocol (async, so a Redis-backed registry shared
by a fleet can implement it later). States:

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


class CallRegistry(Protocol):
    async def put(self, record: CallRecord) -> None: ...

    async def get(self, call_sid: str) -> CallRecord | None: ...

    async def update(self, call_sid: str, **changes: Any) -> CallRecord | None: ...

    async def list(self, *, state: str | None = None, direction: str | None = None) -> list[CallRecord]: ...


class InMemoryRegistry:
    def __init__(self, retention_seconds: float = 3600.0, max_ended: int = 10_000) -> None:
        self._records: dict[str, CallRecord] = {}
        self._retention = retention_seconds
        self._max_ended = max_ended

    async def put(self, record: CallRecord) -> None:
        self._records[record.call_sid] = record
        self._forget_old()

    async def get(self, call_sid: str) -> CallRecord | None:
        return self._records.get(call_sid)

    async def update(self, call_sid: str, **changes: Any) -> CallRecord | None:
        record = self._records.get(call_sid)
        if record is None:
            return None
        if changes.get("state") is CallState.ENDED and record.ended_at is None:
            changes.setdefault("ended_at", time.time())
        if changes.get("state") is CallState.LIVE and record.live_at is None:
            changes.setdefault("live_at", time.time())
        record = dataclasses.replace(record, **changes)
        self._records[call_sid] = record
        return record

    async def list(self, *, state: str | None = None, direction: str | None = None) -> list[CallRecord]:
        return [
            record
            for record in self._records.values()
            if (state is None or record.state == state)
            and (direction is None or record.direction == direction)
        ]

    def _forget_old(self) -> None:
        ended = [r for r in self._records.values() if r.state is CallState.ENDED]
        cutoff = time.time() - self._retention
        for record in ended:
            if (record.ended_at or 0) < cutoff:
                del self._records[record.call_sid]
        excess = len(ended) - self._max_ended
        for record in sorted(ended, key=lambda r: r.ended_at or 0)[: max(0, excess)]:
            self._records.pop(record.call_sid, None)
