"""Twilio's outbound playback buffer, modelled sans-I/O on a millisecond clock.

What Twilio does with what the gateway sends (Media Streams reference, section 1.6):
audio is queued and played in order at 8 bytes per ms; a `mark` is echoed when playback
reaches it (at once if nothing is queued before it); `clear` drops every unplayed byte
and echoes all pending marks immediately. `heard` is exactly what the caller's ear got,
silence included, one mu-law byte per 1/8 ms, so it can be written to a WAV and compared.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from actors.g711 import ULAW_SILENCE

BYTES_PER_MS = 8


@dataclass(slots=True)
class _Mark:
    name: str


class TwilioPlayback:
    def __init__(self) -> None:
        self._queue: deque[bytearray | _Mark] = deque()
        self._queued_bytes = 0
        self.heard = bytearray()
        self.audio_bytes_played = 0
        self.bytes_cleared = 0
        self.last_audio_ms = 0.0  # when the last queued audio byte finished playing
        self.audio_starts_ms: list[float] = []  # each time playback went from idle to audio
        self.audio_stops_ms: list[float] = []  # each time it went from audio to idle (ran dry or cleared)
        self._idle = True

    @property
    def clock_ms(self) -> float:
        return len(self.heard) / BYTES_PER_MS

    @property
    def queued_ms(self) -> float:
        return self._queued_bytes / BYTES_PER_MS

    def next_mark_ms(self) -> float | None:
        """When playback will reach the first queued mark, if nothing is cleared before."""
        queued = 0
        for entry in self._queue:
            if isinstance(entry, _Mark):
                return self.clock_ms + queued / BYTES_PER_MS
            queued += len(entry)
        return None

    def advance(self, now_ms: float) -> list[str]:
        """Play up to `now_ms`; return the names of marks playback reached."""
        budget = int(now_ms * BYTES_PER_MS) - len(self.heard)
        echoed = self._echo_leading_marks()
        while budget > 0 and self._queue:
            head = self._queue[0]
            assert isinstance(head, bytearray)
            if self._idle:
                self.audio_starts_ms.append(self.clock_ms)
                self._idle = False
            taken = head[:budget]
            del head[:budget]
            self.heard += taken
            budget -= len(taken)
            self._queued_bytes -= len(taken)
            self.audio_bytes_played += len(taken)
            self.last_audio_ms = self.clock_ms
            if not head:
                self._queue.popleft()
            echoed += self._echo_leading_marks()
        if budget > 0:
            self._stop()
            self.heard += bytes([ULAW_SILENCE]) * budget
        return echoed

    def enqueue_audio(self, now_ms: float, payload: bytes) -> list[str]:
        echoed = self.advance(now_ms)
        if payload:
            self._queue.append(bytearray(payload))
            self._queued_bytes += len(payload)
        return echoed

    def enqueue_mark(self, now_ms: float, name: str) -> list[str]:
        echoed = self.advance(now_ms)
        self._queue.append(_Mark(name))
        return echoed + self._echo_leading_marks()

    def clear(self, now_ms: float) -> list[str]:
        """Drop unplayed audio; every pending mark is echoed, in order."""
        echoed = self.advance(now_ms)
        echoed += [entry.name for entry in self._queue if isinstance(entry, _Mark)]
        if self._queued_bytes:
            self._stop()
        self.bytes_cleared += self._queued_bytes
        self._queue.clear()
        self._queued_bytes = 0
        return echoed

    def _stop(self) -> None:
        if not self._idle:
            self.audio_stops_ms.append(self.clock_ms)
            self._idle = True

    def _echo_leading_marks(self) -> list[str]:
        echoed = []
        while self._queue and isinstance(self._queue[0], _Mark):
            echoed.append(self._queue.popleft().name)  # type: ignore[union-attr]
        return echoed
