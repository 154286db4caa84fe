"""The call ledger: call records kept up to date from Twilio and the call path.

Twilio's webhooks (a call answered, status callbacks) and the media endpoint (a stream
live, a call over) report here; each change of state is written to the registry and
announced on the event bus as `call.state`. Operators read the same records through
the admin API. A registry that cannot be reached (Redis, in a fleet) never stops a call:
the change is logged as `fleet.record_lost` and counted in `records_lost`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

import structlog

from gateway.calls.event_bus import EventBus
from gateway.calls.registry import CallRecord, CallRegistry, CallState, RegistryUnavailable

log = structlog.get_logger("gateway.calls.ledger")
T = TypeVar("T")

# Twilio's final statuses, as they arrive in status callbacks.
FINAL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})


class CallLedger:
    def __init__(self, registry: CallRegistry, bus: EventBus, instance: str) -> None:
        self.registry = registry
        self._bus = bus
        self._instance = instance
        self.records_lost = 0

    async def record(self, call_sid: str) -> CallRecord | None:
        return await self._safely(self.registry.get(call_sid), call_sid, "read")

    async def placed(self, record: CallRecord) -> None:
        """An outbound call was placed through Twilio REST."""
        await self._safely(self.registry.put(record), record.call_sid, "put")
        self.announce(record)

    async def answered(self, call_sid: str, form: Mapping[str, str]) -> None:
        """The voice webhook accepted a call: new (inbound) or answered (outbound)."""
        record = await self.record(call_sid)
        if record is not None:
            await self.set_state(call_sid, CallState.CONNECTING, answered_at=time.time())
            return
        direction = "inbound" if form.get("Direction", "inbound") == "inbound" else "outbound"
        now = time.time()
        record = CallRecord(
            call_sid=call_sid, direction=direction, state=CallState.CONNECTING,
            from_number=form.get("From", ""), to_number=form.get("To", ""),
            instance=self._instance, created_at=now, answered_at=now,
            twilio_status=form.get("CallStatus", ""),
        )  # fmt: skip
        await self.placed(record)

    async def status_callback(self, form: Mapping[str, str]) -> None:
        """Twilio reports call progress (initiated, ringing, in-progress, completed...)."""
        call_sid, status = form.get("CallSid", ""), form.get("CallStatus", "")
        record = await self.record(call_sid)
        if record is None or record.state is CallState.ENDED:
            return
        changes: dict[str, Any] = {"twilio_status": status}
        if status in FINAL_STATUSES and record.state is not CallState.LIVE:
            changes.update(state=CallState.ENDED, end_reason=status)
        updated = await self._safely(self.registry.update(call_sid, **changes), call_sid, "update")
        if updated is not None and updated.state is not record.state:
            self.announce(updated)

    async def live(self, call_sid: str, stream_sid: str) -> None:
        """The stream is up here: this instance owns the call from now on."""
        await self.set_state(call_sid, CallState.LIVE, stream_sid=stream_sid, instance=self._instance)

    async def ended(self, call_sid: str, end_reason: str) -> None:
        await self.set_state(call_sid, CallState.ENDED, end_reason=end_reason)

    async def set_state(self, call_sid: str, state: CallState, **changes: Any) -> None:
        update = self.registry.update(call_sid, state=state, **changes)
        record = await self._safely(update, call_sid, "update")
        if record is not None:
            self.announce(record)

    async def _safely(self, write: Awaitable[T], call_sid: str, what: str) -> T | None:
        try:
            return await write
        except RegistryUnavailable as exc:
            self.records_lost += 1
            log.warning("fleet.record_lost", call_sid=call_sid, operation=what, detail=str(exc))
            return None

    def announce(self, record: CallRecord) -> None:
        self._bus.publish(
            "call.state", record.as_dict(), call_sid=record.call_sid, direction=record.direction
        )
