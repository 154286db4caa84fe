"""Whole-clip conversion between the two wire formats (pcmu, pcm24k)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from actors import g711
from actors.realtime import AudioFormat
from actors.resample import Downsampler, Upsampler


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
