"""The local agent's audio: its packaged clips and conversion between the two wire formats."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import numpy as np
import numpy.typing as npt

from actors import g711
from actors.realtime import AudioFormat
from actors.resample import Downsampler, Upsampler

GREETING_TRANSCRIPT = "Hello, this is the loopback agent. Say something, and I will play it back."


@cache
def greeting_ulaw() -> bytes:
    """The spoken greeting, G.711 mu-law 8 kHz (made by ops/tools/make_clips.sh)."""
    return files("gateway.local_agent").joinpath("clips/greeting.ulaw").read_bytes()


def to_pcm16(audio: bytes, audio_format: AudioFormat) -> npt.NDArray[np.int16]:
    """Samples of `audio` at its own rate (8 kHz for pcmu, 24 kHz for pcm24k)."""
    if audio_format is AudioFormat.PCMU:
        return g711.decode(audio)
    return np.frombuffer(audio[: len(audio) & ~1], dtype="<i2")


def convert(audio: bytes, source: AudioFormat, target: AudioFormat) -> bytes:
    """Re-encode a whole clip from one wire format to the other."""
    if source is target:
        return audio
    if source is AudioFormat.PCMU:
        return Upsampler(3).process(g711.decode(audio)).astype("<i2").tobytes()
    return g711.encode(Downsampler(3).process(to_pcm16(audio, source)))
