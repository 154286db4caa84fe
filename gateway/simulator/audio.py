"""Caller audio for the simulator: the packaged phrase, WAV files in and out, tones."""

from __future__ import annotations

import wave
from functools import cache
from importlib.resources import files
from pathlib import Path

import numpy as np

from actors import g711
from actors.resample import CUTOFF_HZ, KAISER_BETA, TAPS, Downsampler, kaiser_lowpass


@cache
def caller_phrase() -> bytes:
    """ "Testing one two three, can you hear me?" as mu-law 8 kHz (ops/tools/make_clips.sh)."""
    return files("gateway.simulator").joinpath("clips/caller.ulaw").read_bytes()


def tone(frequency: float, seconds: float, level_dbfs: float = -12.0) -> bytes:
    t = np.arange(int(8000 * seconds)) / 8000
    amplitude = 32768 * 10 ** (level_dbfs / 20)
    return g711.encode((amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.int16))


def read_wav(path: Path) -> bytes:
    """A 16-bit PCM WAV (mono or stereo, 8/16/24/48 kHz) as mu-law 8 kHz."""
    with wave.open(str(path), "rb") as wav:
        rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
        frames = wav.readframes(wav.getnframes())
    if width != 2 or rate not in {8000, 16000, 24000, 48000}:
        raise ValueError(f"{path}: need 16-bit PCM at 8, 16, 24 or 48 kHz, got {8 * width}-bit at {rate} Hz")
    samples = np.frombuffer(frames, dtype="<i2").reshape(-1, channels).mean(axis=1).astype(np.int16)
    if rate != 8000:
        taps = TAPS * rate // 24000 | 1  # the same transition width at every input rate
        lowpass = kaiser_lowpass(taps, CUTOFF_HZ, rate, KAISER_BETA)
        samples = Downsampler(rate // 8000, lowpass).process(samples)
    return g711.encode(samples)


def write_wav(path: Path, ulaw: bytes) -> None:
    """What the caller heard, as a 16-bit PCM WAV at 8 kHz."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(g711.decode(ulaw).astype("<i2").tobytes())
