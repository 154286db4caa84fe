"""The audio the load generator and the benchmark AI agree on.

Every simulated call opens with three identity frames: constant levels, one of 16 per
frame, spelling the call's number in base 16 (up to 4096 calls). A constant level
survives mu-law and the gateway's resampler exactly (the filters have unit gain at DC),
so the benchmark AI can tell which call a session carries in both audio formats, and
match its receive times to the generator's send times frame by frame.

After that a caller alternates speech (a loud 400 Hz square wave) and silence; the AI
tells them apart by looking at a few samples.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from actors import g711
from actors.realtime import AudioFormat

FRAME_BYTES = 160
IDENTITY_FRAMES = 3
MAX_CALLS = 16**IDENTITY_FRAMES
_LEVELS = tuple(-11250 + 1500 * digit for digit in range(16))
_LOUD = 4000  # a sample beyond this is speech


def identity_frames(call: int) -> list[bytes]:
    """The mu-law frames that open call number `call`."""
    if not 0 <= call < MAX_CALLS:
        raise ValueError(f"call number must be below {MAX_CALLS}, got {call}")
    digits = [(call >> (4 * place)) & 15 for place in reversed(range(IDENTITY_FRAMES))]
    return [g711.encode(np.full(FRAME_BYTES, _LEVELS[digit], dtype=np.int16)) for digit in digits]


def read_identity(frames: list[npt.NDArray[np.int16]]) -> int:
    """The call number spelled by the first frames a session received (as PCM at their rate)."""
    call = 0
    for samples in frames[:IDENTITY_FRAMES]:
        middle = samples[len(samples) // 4 : len(samples) * 5 // 6]  # past the resampler's transient
        level = float(middle.mean())
        digit = min(range(16), key=lambda d: abs(_LEVELS[d] - level))
        call = call * 16 + digit
    return call


SPEECH_FRAME = g711.encode(np.array(([9000] * 10 + [-9000] * 10) * 8, dtype=np.int16))
SILENT_FRAME = bytes([g711.ULAW_SILENCE]) * FRAME_BYTES


def is_speech(audio: bytes, audio_format: AudioFormat) -> bool:
    """Whether a received frame is speech, from four samples across it."""
    if audio_format is AudioFormat.PCMU:
        samples = g711.decode(audio[5::40])
    else:
        samples = np.frombuffer(audio, dtype="<i2")[85::120]  # mid-half-wave after the 40-sample delay
    return bool(np.abs(samples.astype(np.int32)).max() > _LOUD)


def reply_audio(seconds: float, audio_format: AudioFormat) -> bytes:
    """What the benchmark AI says: a 440 Hz tone at -12 dBFS, in the session's format."""
    rate = 8000 if audio_format is AudioFormat.PCMU else 24000
    t = np.arange(int(seconds * rate)) / rate
    samples = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    if audio_format is AudioFormat.PCMU:
        return g711.encode(samples)
    return samples.astype("<i2").tobytes()
