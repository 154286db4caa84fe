"""The capacity benchmark's barge-in and pacing figures read the records as intended.

ops/bench is not a package (its scripts run as programs), so its folder is put on the path.
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "ops" / "bench"))

import figures


def test_a_clear_is_timed_from_the_latest_speech_started_before_it():
    speech_started = np.array([1.0, 5.0])
    cleared = np.array([1.004, 5.002, 9.0])  # the last one answers no speech_started (over 1 s)
    latency = figures._clear_latency(cleared, speech_started)
    assert np.allclose(latency, [0.004, 0.002])


def test_truncation_error_compares_audio_end_ms_with_what_the_caller_had_heard_at_the_clear():
    cleared, played_ms = np.array([2.0, 6.0]), np.array([400.0, 1250.0])
    truncates, truncate_ms = np.array([2.001, 6.001, 12.0]), np.array([410.0, 1240.0, 99.0])
    errors = figures._truncation_error(cleared, played_ms, truncates, truncate_ms)
    assert np.allclose(errors * 1000, [10.0, -10.0])  # the truncation at 12 s matches no clear


def test_an_answer_paced_perfectly_is_never_late_and_one_held_back_is():
    deltas = np.array([0.0, 0.025, 0.05, 0.075])  # 100 ms of audio each, 4x real time
    offsets = np.arange(0, 3200, 160)  # 20 ms messages
    perfect = 0.01 + np.maximum(0.0, offsets / 8000 - 0.1)
    perfect = np.maximum(perfect, deltas[offsets // 800] + 0.01)
    assert figures._lateness(perfect, offsets, deltas, 0).max() <= 0.0101
    held = perfect.copy()
    held[10:] += 0.05
    assert figures._lateness(held, offsets, deltas, 0).max() >= 0.05


def test_a_response_is_found_for_an_answer_by_when_it_began():
    deltas = np.array([1.0, 1.1, 5.0, 5.1])
    starts = np.array([0, 2])
    assert figures._response_of(1.02, deltas, starts) == 0
    assert figures._response_of(5.3, deltas, starts) == 2
    assert figures._response_of(0.5, deltas, starts) is None
