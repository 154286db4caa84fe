"""What has been said on a call, kept so a new AI session can continue the conversation.

A realtime session cannot be resumed: after a drop or a recycle, the new session starts
empty. The gateway keeps both sides' transcripts (the caller's from input
transcription, the assistant's from its audio transcript) and replays them as text
items. Assistant audio cannot be recreated, only its text. When the caller interrupted
an item, only the part they heard is kept, estimated by time (the server trims its own
transcript the same way, imprecisely). Replay is bounded to the most recent turns.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Turn:
    role: str  # "user", "assistant" or "system"
    text: str
    item_id: str


class Conversation:
    def __init__(self, max_replay_chars: int = 16_000, max_turns: int = 200) -> None:
        self._turns: list[Turn] = []
        self._by_item: dict[str, Turn] = {}
        self._max_chars = max_replay_chars
        self._max_turns = max_turns

    def __len__(self) -> int:
        return len(self._turns)

    def caller_turn(self, item_id: str) -> None:
        """The caller started a turn (its transcript may come later)."""
        self._add(Turn("user", "", item_id))

    def caller_text(self, item_id: str, transcript: str) -> None:
        turn = self._by_item.get(item_id) or self._add(Turn("user", "", item_id))
        turn.text = transcript.strip()

    def add_text(self, role: str, text: str) -> None:
        """A text item the gateway added (a keypad entry, an operator's note)."""
        self._add(Turn(role, text, ""))

    def assistant_delta(self, item_id: str, delta: str) -> None:
        turn = self._by_item.get(item_id) or self._add(Turn("assistant", "", item_id))
        turn.text += delta

    def assistant_done(self, item_id: str, transcript: str) -> None:
        turn = self._by_item.get(item_id) or self._add(Turn("assistant", "", item_id))
        turn.text = transcript

    def assistant_cut(self, item_id: str, heard_ms: float, total_ms: float) -> None:
        """The caller heard only `heard_ms` of the item: keep that share of its words."""
        turn = self._by_item.get(item_id)
        if turn is None or total_ms <= 0:
            return
        words = turn.text.split()
        kept = round(len(words) * min(1.0, heard_ms / total_ms))
        turn.text = " ".join(words[:kept]) + ("..." if kept < len(words) else "")

    def replay(self) -> list[Turn]:
        """The most recent turns with text, oldest first, within the replay budget."""
        chosen: list[Turn] = []
        budget = self._max_chars
        for turn in reversed(self._turns):
            if not turn.text:
                continue
            budget -= len(turn.text)
            if budget < 0:
                break
            chosen.append(turn)
        return chosen[::-1]

    def _add(self, turn: Turn) -> Turn:
        self._turns.append(turn)
        if turn.item_id:
            self._by_item[turn.item_id] = turn
        if len(self._turns) > self._max_turns:
            dropped = self._turns.pop(0)
            self._by_item.pop(dropped.item_id, None)
        return turn
