"""What the gateway sends to "Twilio", checked as strictly as Twilio checks it.

Twilio warns 31950 for a binary frame and 31951 for a frame that is not JSON, has an
unknown event, a missing or extra field, or a wrong streamSid. Real Twilio only warns;
the simulator counts each as a protocol violation so tests can demand zero.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass

import orjson

_FIELDS = {
    "media": ({"event", "streamSid", "media"}, "media", {"payload"}),
    "mark": ({"event", "streamSid", "mark"}, "mark", {"name"}),
    "clear": ({"event", "streamSid"}, None, set()),
}


@dataclass(frozen=True, slots=True)
class OutboundMedia:
    payload: bytes


@dataclass(frozen=True, slots=True)
class OutboundMark:
    name: str


@dataclass(frozen=True, slots=True)
class OutboundClear:
    pass


@dataclass(frozen=True, slots=True)
class Violation:
    code: int  # the Twilio warning this would raise
    reason: str


Outbound = OutboundMedia | OutboundMark | OutboundClear


def check_outbound(message: str | bytes, stream_sid: str) -> Outbound | Violation:  # noqa: PLR0911
    """One return per rule Twilio enforces: flatter than nesting them."""
    if not isinstance(message, str):
        return Violation(31950, "binary frame")
    try:
        data = orjson.loads(message)
    except orjson.JSONDecodeError:
        return Violation(31951, "not JSON")
    if not isinstance(data, dict):
        return Violation(31951, "not a JSON object")
    event = data.get("event")
    if event not in _FIELDS:
        return Violation(31951, f"unknown event {event!r}")
    top, inner_key, inner = _FIELDS[event]
    if set(data) != top:
        return Violation(31951, f"{event}: fields {sorted(data)} instead of {sorted(top)}")
    if data["streamSid"] != stream_sid:
        return Violation(31951, f"{event}: wrong streamSid")
    if inner_key is None:
        return OutboundClear()
    body = data[inner_key]
    if not isinstance(body, dict) or set(body) != inner:
        return Violation(31951, f"{event}.{inner_key}: fields other than {sorted(inner)}")
    value = body[next(iter(inner))]
    if not isinstance(value, str):
        return Violation(31951, f"{event}: {next(iter(inner))} is not a string")
    if event == "mark":
        return OutboundMark(value)
    try:
        return OutboundMedia(binascii.a2b_base64(value, strict_mode=True))
    except ValueError:
        return Violation(31951, "media payload is not base64")
