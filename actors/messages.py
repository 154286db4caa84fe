"""What actors say to each other, and how a call ends.

Audio travels as `AssistantAudio` / raw caller bytes on drop-oldest channels; everything
else here is a control message on a channel that never drops.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from actors.errors import CloseCode
from actors.playout import HeardItem


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
    received_at: float = 0.0  # trio clock time the AI's delta arrived (0: not measured)


# A caller frame: (trio clock time it arrived from Twilio, audio bytes). A bare tuple:
# 50 of these a second per call, and a tuple is the cheapest carrier.
CallerFrame = tuple[float, bytes]


@dataclass(frozen=True, slots=True)
class BargeIn:
    """The caller started speaking: audio of earlier generations must not be played.

    `detected_at` is the trio clock time the speech was detected, so the writer can
    measure how long the `clear` took to leave.
    """

    generation: int
    detected_at: float
    source: str = "provider"  # or "local": the gateway's own VAD


@dataclass(frozen=True, slots=True)
class Heard:
    """Writer -> AI session, after a barge-in: how much of each item the caller heard."""

    generation: int
    items: tuple[HeardItem, ...]


@dataclass(frozen=True, slots=True)
class ItemHeard:
    """Writer -> AI session: the caller has heard this item to its end (its last mark came back)."""

    item_id: str


@dataclass(frozen=True, slots=True)
class PlayoutIdle:
    """Writer -> AI session: everything sent has been heard (or cleared); Twilio is silent."""


@dataclass(frozen=True, slots=True)
class PlayoutBusy:
    """Writer -> AI session: assistant audio is playing again."""


PlayoutReport = Heard | ItemHeard | PlayoutIdle | PlayoutBusy


class EndReason(StrEnum):
    TWILIO_STOP = "twilio_stop"
    TWILIO_CLOSED = "twilio_closed"
    TWILIO_PROTOCOL_ERROR = "twilio_protocol_error"
    TWILIO_SILENT = "twilio_silent"  # no message from Twilio for the idle limit: the stream is gone
    AI_UNAVAILABLE = "ai_unavailable"  # no session could be had: dropped, unreachable, retries spent
    AI_ERROR = "ai_error"  # the provider refused us: a bad key, a rejected configuration
    AI_HANGUP = "ai_hangup"  # the AI called end_call
    TRANSFERRED = "transferred"
    SHUTDOWN = "shutdown"
    OPERATOR_HANGUP = "operator_hangup"
    INTERNAL_ERROR = "internal_error"
    MOVED = "moved"  # the stream was closed to carry on on another instance: the call goes on


@dataclass(frozen=True, slots=True)
class CallEnd:
    """Why a call ended, and the close code the Twilio socket gets for it."""

    reason: EndReason
    detail: str = ""
    close_code: CloseCode = CloseCode.NORMAL
