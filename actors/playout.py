"""PlayoutClock: what Twilio holds and what the caller has heard, sans-I/O.

All audio the gateway sends lies on one timeline, in ms, in send order; each assistant
item occupies a stretch of it. Twilio plays the timeline at real time (8 bytes a ms),
pausing only when its buffer runs dry. So the ear is known from where playback started:
a frame sent while Twilio's buffer is (estimated) empty starts playing when it lands,
and from there the ear moves at real time, up to what was sent.

Mark echoes check that clock. An echo says Twilio had played up to the mark some time
ago: it left Twilio when playback reached the mark and crossed the network to us, so it
arrives later than the clock has the ear at the mark by about two one-way delays (audio
out, echo back). The clock learns that delay from the echoes (half the gap, smoothed),
and puts the ear one delay behind the send-side estimate. An echo that comes much later
than the learnt delay explains (more than STALL_MS) means playback fell behind: the
clock moves back by that much. An echo earlier than the clock expects moves it forward.
The last echoed mark is a floor for the ear, what was sent its ceiling.

`clear()` returns, per item, how much was heard: the position
`conversation.item.truncate` needs. Marks are named `<generation>.<sequence>`; after a
clear every outstanding mark is forgotten, so the echoes Twilio sends for cleared audio
are recognised as stale and ignored.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

STALL_MS = 40.0  # an echo this much later than the learnt delay explains: playback fell behind
DELAY_SMOOTHING = 0.25  # weight of each new echo in the one-way delay estimate


@dataclass(frozen=True, slots=True)
class HeardItem:
    item_id: str
    heard_ms: int
    sent_ms: int


@dataclass(slots=True)
class _Item:
    item_id: str
    start: float  # timeline position of its first ms
    sent: float = 0.0  # ms of it sent so far
    since_mark: float = 0.0  # ms sent since its last mark


@dataclass(frozen=True, slots=True)
class _Mark:
    name: str
    at: float  # timeline position the mark follows
    item_end: str  # the item this mark ends, or "" for a mark inside an item


class PlayoutClock:
    def __init__(self, mark_interval_ms: float = 100.0) -> None:
        self.mark_interval_ms = mark_interval_ms
        self._sequence = 0
        self.delay_ms: float | None = None  # one way, gateway -> caller's ear; learnt from echoes
        self._reset(0.0)

    def _reset(self, now: float) -> None:
        self._sent = 0.0  # timeline length: ms sent in this generation
        self._items: deque[_Item] = deque()
        self._outstanding: deque[_Mark] = deque()
        self._anchor = (0.0, now)  # (timeline position, time) where playback (re)started
        self._floor = 0.0  # position of the last mark echoed
        self._ahead_until = now  # when Twilio's buffer will run dry, as far as we know

    # ---- what the writer reports -----------------------------------------------------

    def sent_frame(self, now: float, item_id: str, ms: float) -> None:
        """A media frame of `ms` of `item_id` was sent to Twilio at `now` (seconds)."""
        if now >= self._ahead_until:  # Twilio had run dry: playback starts with this frame
            self._anchor = (self._sent, now)
        if not self._items or self._items[-1].item_id != item_id:
            self._items.append(_Item(item_id, self._sent))
        item = self._items[-1]
        item.sent += ms
        item.since_mark += ms
        self._sent += ms
        self._ahead_until = max(self._ahead_until, now) + ms / 1000

    def mark_due(self) -> bool:
        """Has the current item run `mark_interval_ms` past its last mark?"""
        return bool(self._items) and self._items[-1].since_mark >= self.mark_interval_ms

    def sent_mark(self, generation: int, item_end: str = "") -> str:
        """Name for a mark that follows everything sent so far (and ends `item_end`, if given)."""
        self._sequence += 1
        name = f"{generation}.{self._sequence}"
        self._outstanding.append(_Mark(name, self._sent, item_end))
        if self._items:
            self._items[-1].since_mark = 0.0
        return name

    def echoed(self, now: float, name: str) -> list[str] | None:
        """Twilio echoed mark `name`: the items now heard to their end, or None if the mark
        is stale (cleared) or unknown."""
        if not any(mark.name == name for mark in self._outstanding):
            return None
        ended = []
        while True:  # Twilio echoes in order: anything before it was reached too
            mark = self._outstanding.popleft()
            if mark.item_end:
                ended.append(mark.item_end)
            if mark.name == name:
                break
        if mark.at < self._sent:  # audio after the mark was playing: the echo times the clock
            self._check(now, mark.at)
        self._floor = max(self._floor, mark.at)
        while len(self._items) > 1 and self._items[0].start + self._items[0].sent <= mark.at:
            self._items.popleft()  # fully heard; the newest item stays to keep its offsets
        return ended

    def _check(self, now: float, position: float) -> None:
        """Set the clock by the echo, at `now`, of a mark at timeline `position`."""
        gap = self._predicted(now) - position  # how far the send-side clock is past the echo
        if gap < 0:  # playback is further on than the clock thought: it started earlier
            self._shift(gap)
            return
        if self.delay_ms is None:
            self.delay_ms = gap / 2
            return
        excess = gap - 2 * self.delay_ms
        if excess > STALL_MS:  # more than the network explains: playback fell behind
            self._shift(excess)
        else:
            self.delay_ms += DELAY_SMOOTHING * (gap / 2 - self.delay_ms)

    def _shift(self, ms: float) -> None:
        """Move the playback clock later by `ms` (earlier if negative)."""
        position, when = self._anchor
        self._anchor = (position, when + ms / 1000)
        self._ahead_until += ms / 1000

    def _predicted(self, now: float) -> float:
        position, when = self._anchor
        return position + (now - when) * 1000

    def clear(self, now: float) -> list[HeardItem]:
        """Twilio's buffer was cleared at `now`: how much of each item the caller heard."""
        heard = self.heard(now)
        self._reset(now)
        return heard

    # ---- what the writer asks ------------------------------------------------------

    def lead_ms(self, now: float) -> float:
        """How far ahead of the caller's ear the audio already sent reaches."""
        return max(0.0, (self._ahead_until - now) * 1000)

    def ear(self, now: float) -> float:
        """Timeline position of the caller's ear: one delay behind the send-side clock, not
        before the last echoed mark, not past what was sent."""
        return min(max(self._predicted(now) - (self.delay_ms or 0.0), self._floor), self._sent)

    def heard(self, now: float) -> list[HeardItem]:
        """Items still tracked with how much of each the caller has heard."""
        ear = self.ear(now)
        return [
            HeardItem(item.item_id, round(min(max(ear - item.start, 0.0), item.sent)), round(item.sent))
            for item in self._items
        ]

    def drained(self, now: float) -> bool:
        """Everything sent has been played and every mark came back."""
        return not self._outstanding and self.lead_ms(now) == 0
