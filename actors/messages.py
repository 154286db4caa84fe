"""What actors say to each other, and how a call ends.

Audio travels as `AssistantAudio` / raw caller bytes on drop-oldest channels; everything
else here is a control message on a channel that never drops.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from actors.errors import CloseCode


@dataclass(frozen=True, slots=True)
class AssistantAudio:
    """A piece of one assistant item's audio, tagged with the barge-in generation it belongs to.

    `item_done` marks the last piece of the item (its payload may be empty): the writer
    sends what it still holds of the item instead of waiting for a full frame.
    """

    generation: int
    item_id: str
    audio: bytes
    item_done: bool = False


@dataclass(frozen=True, slots=True)
class BargeIn:
    """The caller started speaking: audio of earlier generations must not be played."""

    generation: int


class EndReason(StrEnum):
    TWILIO_STOP = "twilio_stop"
    TWILIO_CLOSED = "twilio_closed"
    TWILIO_PROTOCOL_ERROR = "twilio_protocol_error"
    AI_UNAVAILABLE = "ai_unavailable"
    AI_CLOSED = "ai_closed"
    AI_ERROR = "ai_error"
    AI_PROTOCOL_ERROR = "ai_protocol_error"
    SHUTDOWN = "shutdown"
    INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True, slots=True)
class CallEnd:
    """Why a call ended, and the close code the Twilio socket gets for it."""

    reason: EndReason
    detail: str = ""
    close_code: CloseCode = CloseCode.NORMAL
