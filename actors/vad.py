"""Energy voice-activity detection, sans-I/O (the local agent, and the optional local barge-in).

Feed PCM16 samples at any rate; get `SpeechStarted` / `SpeechStopped` back, timed in ms
of audio fed so far (the same clock OpenAI uses for `audio_start_ms`). A frame of 20 ms
is speech when its RMS level is above the threshold; speech starts after `start_ms` of
speech frames in a row and stops after `silence_ms` of quiet ones. Enough for a loopback
agent and for tests; it is not a speech model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FRAME_MS = 20


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    at_ms: int  # where speech began (the first speech frame), in ms of audio fed


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    at_ms: int  # where speech ended (the first quiet frame of the silence that ended it)


VadEvent = SpeechStarted | SpeechStopped


def threshold_dbfs(openai_threshold: float) -> float:
    """Map OpenAI's 0..1 VAD threshold onto a level: 0.5 -> -40 dBFS, 1.0 -> -20 dBFS."""
    return -60.0 + 40.0 * openai_threshold


class EnergyVAD:
    def __init__(
        self, sample_rate: int, threshold_db: float, start_ms: int = 60, silence_ms: int = 500
    ) -> None:
        self._frame = sample_rate * FRAME_MS // 1000
        self._threshold = 32768.0 * 10 ** (threshold_db / 20)
        self._start_frames = max(1, start_ms // FRAME_MS)
        self._silence_frames = max(1, silence_ms // FRAME_MS)
        self._pending = np.empty(0, dtype=np.int16)
        self._frames_fed = 0
        self._run = 0  # consecutive frames disagreeing with the current state
        self.speaking = False

    @property
    def fed_ms(self) -> int:
        return self._frames_fed * FRAME_MS

    def feed(self, samples: npt.NDArray[np.int16]) -> list[VadEvent]:
        pending = np.concatenate((self._pending, samples))
        whole = len(pending) // self._frame * self._frame
        self._pending = pending[whole:]
        events: list[VadEvent] = []
        for frame in pending[:whole].reshape(-1, self._frame):
            event = self._frame_decision(float(np.sqrt(np.mean(frame.astype(np.float64) ** 2))))
            if event is not None:
                events.append(event)
        return events

    def _frame_decision(self, level: float) -> VadEvent | None:
        self._frames_fed += 1
        loud = level > self._threshold
        if loud == self.speaking:
            self._run = 0
            return None
        self._run += 1
        needed = self._start_frames if loud else self._silence_frames
        if self._run < needed:
            return None
        self.speaking = loud
        at_ms = (self._frames_fed - self._run) * FRAME_MS
        self._run = 0
        return SpeechStarted(at_ms) if loud else SpeechStopped(at_ms)
