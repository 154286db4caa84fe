"""What operators can do: the commands behind the admin REST API and the control WebSocket.

Every operation validates its input and answers with a result or an `OperationError`
carrying a stable code (`bad_request`, `not_found`, `conflict`, `twilio_error`,
`unavailable`, `unconfigured`), so both front ends report failures the same way.
Twilio REST errors carry Twilio's own code and message.
"""

from __future__ import annotations

import re
import time
from typing import Any

import structlog
import trio

from actors.messages import CallEnd, EndReason
from gateway.calls.admission import Admission, Refusal
from gateway.calls.ledger import CallLedger
from gateway.calls.live import LiveCalls
from gateway.calls.registry import CallRecord, CallState
from gateway.settings import Settings
from gateway.twilio import twiml
from gateway.twilio.rest import TwilioRest, TwilioRestError

log = structlog.get_logger("gateway.admin.operations")

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_CALL_SID = re.compile(r"CA[0-9a-zA-Z]{32}")


class OperationError(Exception):
    STATUS = {"bad_request": 400, "unknown_command": 400, "unauthorized": 401, "not_found": 404,
              "conflict": 409,
              "twilio_error": 502, "unavailable": 503, "unconfigured": 501}  # fmt: skip

    def __init__(self, code: str, message: str, twilio_code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.twilio_code = twilio_code

    @property
    def http_status(self) -> int:
        return self.STATUS[self.code]

    def as_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.twilio_code is not None:
            error["twilio_code"] = self.twilio_code
        return error


class CallOperations:
    def __init__(
        self,
        settings: Settings,
        *,
        ledger: CallLedger,
        live: LiveCalls,
        admission: Admission,
        rest: TwilioRest | None,
    ) -> None:
        self._settings = settings
        self._ledger = ledger
        self._registry = ledger.registry
        self._live = live
        self._admission = admission
        self._rest = rest

    # ---- reading ------------------------------------------------------------------

    async def list_calls(
        self, state: str | None = None, direction: str | None = None
    ) -> list[dict[str, Any]]:
        if state is not None and state not in CallState.__members__.values():
            raise OperationError("bad_request", f"unknown state {state!r}")
        if direction not in (None, "inbound", "outbound"):
            raise OperationError("bad_request", f"unknown direction {direction!r}")
        records = await self._registry.list(state=state, direction=direction)
        return [record.as_dict() for record in sorted(records, key=lambda r: r.created_at)]

    async def get_call(self, call_sid: str) -> dict[str, Any]:
        return (await self._record(call_sid)).as_dict()

    # ---- acting -------------------------------------------------------------------

    async def originate(self, to: str, from_: str | None = None) -> dict[str, Any]:
        refusal = self._admission.refusal()
        if refusal is Refusal.DRAINING:
            raise OperationError("unavailable", "the gateway is draining and places no new calls")
        if refusal is Refusal.OVERLOADED:
            raise OperationError("unavailable", f"the gateway is overloaded: {self._admission.overload()}")
        if refusal is Refusal.AT_CAPACITY:
            raise OperationError(
                "unavailable", f"the gateway is at GATEWAY_MAX_CALLS ({self._admission.max_calls})"
            )
        caller = from_ or self._settings.caller_id
        for name, number in (("to", to), ("from", caller)):
            if not isinstance(number, str) or not _E164.fullmatch(number):
                raise OperationError("bad_request", f"{name!r} must be an E.164 number like +15551234567")
        rest = self._require_rest()
        base = self._settings.public_url
        try:
            answer = await rest.create_call(
                to, caller, url=base + "/twilio/voice", status_callback=base + "/twilio/status"
            )
        except TwilioRestError as exc:
            raise _twilio(exc) from None
        record = CallRecord(
            call_sid=str(answer["sid"]), direction="outbound", state=CallState.RINGING, from_number=caller,
            to_number=to, instance=self._settings.instance_id, created_at=time.time(),
            twilio_status=str(answer.get("status", "queued")),
        )  # fmt: skip
        await self._ledger.placed(record)
        log.info("call.originated", call_sid=record.call_sid)
        return record.as_dict()

    async def hang_up(self, call_sid: str) -> dict[str, Any]:
        record = await self._active(call_sid)
        rest = self._require_rest()
        await self._ledger.set_state(call_sid, CallState.ENDING)
        try:
            await rest.hang_up(call_sid, ringing=record.state is CallState.RINGING)
        except TwilioRestError as exc:
            await self._ledger.set_state(call_sid, record.state)  # still on the line: try again
            raise _twilio(exc) from None
        supervisor = self._live.get(call_sid)
        if supervisor is not None:
            supervisor.end(CallEnd(EndReason.OPERATOR_HANGUP, "hung up by an operator"))
        log.info("call.operator_hang_up", call_sid=call_sid)
        return (await self._record(call_sid)).as_dict()

    async def transfer(self, call_sid: str, to: str) -> dict[str, Any]:
        if not isinstance(to, str) or not _E164.fullmatch(to):
            raise OperationError("bad_request", "'to' must be an E.164 number like +15551234567")
        supervisor = await self._live_supervisor(call_sid)
        rest = self._require_rest()
        await self._ledger.set_state(call_sid, CallState.ENDING)
        try:
            await rest.redirect(call_sid, twiml.dial(to))
        except TwilioRestError as exc:
            await self._ledger.set_state(call_sid, CallState.LIVE)
            raise _twilio(exc) from None
        supervisor.end(CallEnd(EndReason.TRANSFERRED, to))
        log.info("call.operator_transfer", call_sid=call_sid)
        return (await self._record(call_sid)).as_dict()

    async def say(self, call_sid: str, text: str) -> dict[str, Any]:
        if not isinstance(text, str) or not text.strip() or len(text) > 2000:
            raise OperationError("bad_request", "'text' must be 1 to 2000 characters")
        supervisor = await self._live_supervisor(call_sid)
        try:
            supervisor.say(text.strip())
        except trio.WouldBlock:
            raise OperationError("conflict", "too many messages are already waiting for this call") from None
        return {"call_sid": call_sid, "queued": True}

    async def start_drain(self) -> dict[str, Any]:
        self._admission.drain.start("operator", len(self._live))
        return {"draining": True, "live_calls": len(self._live)}

    # ---- helpers ------------------------------------------------------------------

    async def _record(self, call_sid: str) -> CallRecord:
        if not isinstance(call_sid, str) or not _CALL_SID.fullmatch(call_sid):
            raise OperationError("bad_request", "'call_sid' must be a Twilio CallSid (CA + 32 characters)")
        record = await self._registry.get(call_sid)
        if record is None:
            raise OperationError("not_found", f"no call {call_sid}")
        return record

    async def _active(self, call_sid: str) -> CallRecord:
        record = await self._record(call_sid)
        if record.state in (CallState.ENDED, CallState.ENDING):
            raise OperationError("conflict", f"call {call_sid} is {record.state.value}")
        return record

    async def _live_supervisor(self, call_sid: str) -> Any:
        record = await self._active(call_sid)
        supervisor = self._live.get(call_sid)
        if record.state is not CallState.LIVE or supervisor is None:
            raise OperationError("conflict", f"call {call_sid} is {record.state.value}, not live here")
        return supervisor

    def _require_rest(self) -> TwilioRest:
        if self._rest is None:
            raise OperationError("unconfigured", "Twilio REST needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        return self._rest


def _twilio(exc: TwilioRestError) -> OperationError:
    return OperationError("twilio_error", f"Twilio refused: {exc.message}", exc.code)
