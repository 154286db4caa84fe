"""The local agent's energy VAD."""

import numpy as np

from actors.vad import EnergyVAD, SpeechStarted, SpeechStopped, threshold_dbfs


def frames(level, ms, rate=8000):
    n = rate * ms // 1000
    return (np.sin(np.arange(n) * 2 * np.pi * 440 / rate) * level).astype(np.int16)


def test_speech_start_and_stop_are_timed_in_audio_ms():
    """Speech starts at its first loud frame and stops at the first frame of the silence that ended it."""
    vad = EnergyVAD(8000, threshold_dbfs(0.5), start_ms=60, silence_ms=500)
    events = vad.feed(frames(0, 400))
    events += vad.feed(frames(8000, 1000))
    events += vad.feed(frames(0, 600))
    assert events == [SpeechStarted(400), SpeechStopped(1400)]


def test_short_noise_and_short_pauses_do_not_flip_the_state():
    """A 40 ms click does not start speech; a 200 ms pause does not end it."""
    vad = EnergyVAD(8000, threshold_dbfs(0.5), start_ms=60, silence_ms=500)
    assert vad.feed(frames(8000, 40)) == []
    assert vad.feed(frames(0, 200)) == []
    vad.feed(frames(8000, 300))
    assert vad.speaking
    assert vad.feed(frames(0, 200)) == []
    assert vad.speaking


def test_works_at_24_khz_in_odd_chunk_sizes():
    """Chunks that do not align with 20 ms frames are buffered, at any sample rate."""
    vad = EnergyVAD(24000, threshold_dbfs(0.5))
    signal = np.concatenate([frames(0, 200, 24000), frames(8000, 500, 24000), frames(0, 700, 24000)])
    events = []
    for start in range(0, len(signal), 777):
        events += vad.feed(signal[start : start + 777])
    assert events == [SpeechStarted(200), SpeechStopped(700)]
