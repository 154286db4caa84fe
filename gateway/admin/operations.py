"""What operators can do: the commands behind the admin REST API and the control WebSocket.

Every operation validates its input and answers with a result or an `OperationError`
carrying a stable code (`bad_request`, `not_found`, `conflict`, `twilio_error`,
`unavailable`, `unconfigured`), so both front ends report failures the same way.
Twilio REST errors carry Twilio's own code and message.

In a fleet the registry is shared: listing and reading see every instance's calls, and a
command for a call another instance carries (hang up, transfer, say) or for another
instance (drain) is sent to that instance, which runs it here in `run_forwarded` and
answers; when it cannot be reached in time, or Redis cannot, the answer is `unavailable`.
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
from gateway.calls.registry import CallRecord, CallState, RegistryUnavailable
from gateway.fleet.members import Membership
from gateway.fleet.messaging import CommandRefused, FleetMessenger
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
        fleet: FleetMessenger | None = None,
        members: Membership | None = None,
    ) -> None:
        self._settings = settings
        self._ledger = ledger
        self._registry = ledger.registry
        self._live = live
        self._admission = admission
        self._rest = rest
        self._fleet = fleet
        self._members = members

    # ---- reading ------------------------------------------------------------------

    async def list_calls(
        self, state: str | None = None, direction: str | None = None
    ) -> list[dict[str, Any]]:
        if state is not None and state not in CallState.__members__.values():
            raise OperationError("bad_request", f"unknown state {state!r}")
        if direction not in (None, "inbound", "outbound"):
            raise OperationError("bad_request", f"unknown direction {direction!r}")
        try:
            records = await self._registry.list(state=state, direction=direction)
        except RegistryUnavailable as exc:
            raise OperationError("unavailable", str(exc)) from None
        return [record.as_dict() for record in sorted(records, key=lambda r: r.created_at)]

    async def get_call(self, call_sid: str) -> dict[str, Any]:
        return (await self._record(call_sid)).as_dict()

    async def list_instances(self) -> list[dict[str, Any]]:
        """The fleet's instances (this one alone without Redis)."""
        if self._members is None:
            state = "draining" if self._admission.drain.draining else "serving"
            return [{"instance": self._settings.instance_id, "address": self._settings.public_url,
                     "state": state, "live_calls": len(self._live)}]  # fmt: skip
        try:
            return [member.as_dict() for member in await self._members.list()]
        except RegistryUnavailable as exc:
            raise OperationError("unavailable", str(exc)) from None

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

    async def hang_up(self, call_sid: str, *, here: bool = False) -> dict[str, Any]:
        record = await self._active(call_sid)
        if not here and self._elsewhere(record):
            return await self._forward(record.instance, "hang_up", {"call_sid": call_sid})
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

    async def transfer(self, call_sid: str, to: str, *, here: bool = False) -> dict[str, Any]:
        if not isinstance(to, str) or not _E164.fullmatch(to):
            raise OperationError("bad_request", "'to' must be an E.164 number like +15551234567")
        record = await self._active(call_sid)
        if not here and self._elsewhere(record):
            return await self._forward(record.instance, "transfer", {"call_sid": call_sid, "to": to})
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

    async def say(self, call_sid: str, text: str, *, here: bool = False) -> dict[str, Any]:
        if not isinstance(text, str) or not text.strip() or len(text) > 2000:
            raise OperationError("bad_request", "'text' must be 1 to 2000 characters")
        record = await self._active(call_sid)
        if not here and self._elsewhere(record):
            return await self._forward(record.instance, "say", {"call_sid": call_sid, "text": text})
        supervisor = await self._live_supervisor(call_sid)
        try:
            supervisor.say(text.strip())
        except trio.WouldBlock:
            raise OperationError("conflict", "too many messages are already waiting for this call") from None
        return {"call_sid": call_sid, "queued": True}

    async def start_drain(self, instance: str | None = None) -> dict[str, Any]:
        """Drain this instance, or the named one of the fleet."""
        if instance not in (None, self._settings.instance_id):
            if not isinstance(instance, str) or self._fleet is None:
                raise OperationError("not_found", f"no instance {instance!r} in this fleet")
            return await self._forward(instance, "drain", {})
        self._admission.drain.start("operator", len(self._live))
        return {"instance": self._settings.instance_id, "draining": True, "live_calls": len(self._live)}

    async def run_forwarded(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        """A command another instance of the fleet sent here; errors go back as `CommandRefused`."""
        try:
            if op == "drain":
                return await self.start_drain()
            call_sid = args.get("call_sid", "")
            if op == "hang_up":
                return await self.hang_up(call_sid, here=True)
            if op == "transfer":
                return await self.transfer(call_sid, args.get("to", ""), here=True)
            if op == "say":
                return await self.say(call_sid, args.get("text", ""), here=True)
        except OperationError as exc:
            raise CommandRefused(exc.code, exc.message) from None
        raise CommandRefused("unknown_command", f"no fleet command {op!r}")

    # ---- helpers ------------------------------------------------------------------

    async def _record(self, call_sid: str) -> CallRecord:
        if not isinstance(call_sid, str) or not _CALL_SID.fullmatch(call_sid):
            raise OperationError("bad_request", "'call_sid' must be a Twilio CallSid (CA + 32 characters)")
        try:
            record = await self._registry.get(call_sid)
        except RegistryUnavailable as exc:
            raise OperationError("unavailable", str(exc)) from None
        if record is None:
            raise OperationError("not_found", f"no call {call_sid}")
        return record

    def _elsewhere(self, record: CallRecord) -> bool:
        return self._fleet is not None and record.instance != self._settings.instance_id

    async def _forward(self, instance: str, op: str, args: dict[str, Any]) -> dict[str, Any]:
        assert self._fleet is not None
        timeout = self._settings.fleet_command_timeout_s
        try:
            with trio.move_on_after(timeout):
                return await self._fleet.ask(instance, op, args)
        except CommandRefused as exc:
            code = exc.code if exc.code in OperationError.STATUS else "unavailable"
            raise OperationError(code, exc.message) from None
        except RegistryUnavailable as exc:
            raise OperationError("unavailable", f"instance {instance} could not run {op}: {exc}") from None
        raise OperationError("unavailable", f"instance {instance} did not answer {op} within {timeout:g} s")

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
