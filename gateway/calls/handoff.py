"""A call on its way from one instance to another: what the new stream needs to carry on.

Written by the instance that moves the call (before it closes the stream), read once by
the instance that gets the new stream; in a fleet they live in Redis
(`gateway.fleet.handoffs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Handoff:
    call_sid: str
    turns: tuple[tuple[str, str], ...]  # (role, text), oldest first: both sides' transcripts
    from_instance: str
    moved_at: float  # Unix time the stream was closed for the move

    def as_dict(self) -> dict[str, Any]:
        return {
            "call_sid": self.call_sid,
            "turns": [list(turn) for turn in self.turns],
            "from_instance": self.from_instance,
            "moved_at": self.moved_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Handoff:
        turns = tuple((str(role), str(text)) for role, text in data["turns"])
        return cls(str(data["call_sid"]), turns, str(data["from_instance"]), float(data["moved_at"]))


class Handoffs(Protocol):
    async def save(self, handoff: Handoff) -> None: ...

    async def waiting(self, call_sid: str) -> bool:
        """A handoff for the call waits to be taken (Twilio asks where the call goes next)."""
        ...

    async def take(self, call_sid: str) -> Handoff | None:
        """The call's handoff, removed; None if there is none."""
        ...
