"""The tools the AI may call, and what the gateway does about each call, sans-I/O.

- `end_call`: the AI's last words play out fully, then the call ends and the Twilio leg
  is hung up.
- `transfer_call`: the AI's announcement plays out, then the call is transferred with a
  `<Dial>` to the configured number or to a requested one the configuration allows.
Unknown tools and bad arguments are answered with an error output, so the model can
recover instead of waiting forever for a result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog

from actors.call_control import CallControl, CallControlError
from actors.messages import CallEnd, EndReason
from actors.realtime import FunctionCall

log = structlog.get_logger("actors.tools")

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


@dataclass(frozen=True, slots=True)
class EndCall:
    reason: str


@dataclass(frozen=True, slots=True)
class Transfer:
    destination: str
    reason: str


Action = EndCall | Transfer


@dataclass(frozen=True, slots=True)
class ToolDecision:
    call_id: str
    output: str  # JSON text for function_call_output
    action: Action | None = None


END_CALL: dict[str, Any] = {
    "type": "function",
    "name": "end_call",
    "description": (
        "Hang up the phone call. Say goodbye first; the call ends once your last words have been "
        "heard. Use it when the conversation is over or the caller asks to hang up."
    ),
    "parameters": {
        "type": "object",
        "properties": {"reason": {"type": "string", "description": "Why the call ends."}},
    },
}

TRANSFER_CALL: dict[str, Any] = {
    "type": "function",
    "name": "transfer_call",
    "description": (
        "Transfer the caller to a human. Tell the caller you are transferring them first; the "
        "transfer happens once your words have been heard."
    ),
    "parameters": {
        "type": "object",
        "properties": {
            "destination": {
                "type": "string",
                "description": "E.164 number to transfer to; leave it out for the default line.",
            },
            "reason": {"type": "string", "description": "Why the caller is transferred."},
        },
    },
}


@dataclass(frozen=True)
class ToolPolicy:
    end_call: bool = True
    transfer_to: str = ""  # default destination; empty means transfer_call is not offered
    transfer_allowed: frozenset[str] = field(default_factory=frozenset)

    def definitions(self) -> list[dict[str, Any]]:
        """The tools to declare in `session.update`."""
        return [
            tool
            for tool, offered in ((END_CALL, self.end_call), (TRANSFER_CALL, bool(self.transfer_to)))
            if offered
        ]

    def decide(self, call: FunctionCall) -> ToolDecision:
        try:
            arguments = orjson.loads(call.arguments or "{}")
        except orjson.JSONDecodeError:
            return _refuse(call, "arguments are not valid JSON")
        if not isinstance(arguments, dict):
            return _refuse(call, "arguments must be a JSON object")
        reason = str(arguments.get("reason", ""))
        if call.name == "end_call" and self.end_call:
            return _accept(call, "The call will end once your last words have been heard.", EndCall(reason))
        if call.name == "transfer_call" and self.transfer_to:
            return self._transfer(call, str(arguments.get("destination") or self.transfer_to), reason)
        return _refuse(call, f"unknown tool {call.name!r}")

    def _transfer(self, call: FunctionCall, destination: str, reason: str) -> ToolDecision:
        if not _E164.fullmatch(destination):
            return _refuse(call, f"destination {destination!r} is not an E.164 number")
        if destination != self.transfer_to and destination not in self.transfer_allowed:
            return _refuse(call, f"transfers to {destination} are not allowed")
        result = "The caller will be transferred once your words have been heard."
        return _accept(call, result, Transfer(destination, reason))


def _accept(call: FunctionCall, result: str, action: Action) -> ToolDecision:
    return ToolDecision(call.call_id, orjson.dumps({"ok": True, "result": result}).decode(), action)


def _refuse(call: FunctionCall, error: str) -> ToolDecision:
    return ToolDecision(call.call_id, orjson.dumps({"ok": False, "error": error}).decode())


def interrupted(call: FunctionCall) -> ToolDecision:
    """Output for a call whose response the caller interrupted: not carried out."""
    return _refuse(call, "not carried out: the caller interrupted before it could happen")


async def carry_out(action: Action, control: CallControl | None) -> CallEnd | str:
    """Do what a tool call decided, on the telephony side.

    Returns how the call ends, or, when a transfer failed, a note for the model to relay
    to the caller. A hang-up that fails still ends the call: closing the stream ends a
    `<Connect><Stream>` call anyway.
    """
    if isinstance(action, EndCall):
        if control is not None:
            try:
                await control.hang_up()
            except CallControlError as exc:
                log.warning("call.hang_up_failed", error=str(exc))
        return CallEnd(EndReason.AI_HANGUP, action.reason)
    try:
        if control is None:
            raise CallControlError("no call control is configured")
        await control.transfer(action.destination)
    except CallControlError as exc:
        log.warning("call.transfer_failed", destination=action.destination, error=str(exc))
        return f"The transfer to {action.destination} failed ({exc}). Tell the caller."
    log.info("call.transferred", destination=action.destination)
    return CallEnd(EndReason.TRANSFERRED, action.destination)
