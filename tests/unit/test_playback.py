"""The simulator's model of Twilio's playback buffer."""

from gateway.simulator.playback import TwilioPlayback


def test_audio_plays_at_8_bytes_per_ms_and_marks_echo_when_reached():
    """A mark after 20 ms of audio is echoed once 20 ms have played, not before."""
    playback = TwilioPlayback()
    playback.enqueue_audio(0, b"\x01" * 160)
    assert playback.enqueue_mark(0, "m1") == []
    assert playback.advance(19.9) == []
    assert playback.advance(20) == ["m1"]
    assert bytes(playback.heard) == b"\x01" * 160


def test_idle_time_is_heard_as_silence():
    """When nothing is queued the caller hears mu-law silence, so the recording keeps real time."""
    playback = TwilioPlayback()
    playback.advance(10)
    playback.enqueue_audio(10, b"\x01" * 8)
    playback.advance(12)
    assert bytes(playback.heard) == b"\xff" * 80 + b"\x01" * 8 + b"\xff" * 8
    assert playback.audio_starts_ms == [10]


def test_a_mark_with_nothing_queued_echoes_at_once():
    """A mark sent when the buffer is empty is echoed immediately."""
    assert TwilioPlayback().enqueue_mark(0, "now") == ["now"]


def test_clear_drops_unplayed_audio_and_echoes_every_pending_mark():
    """clear empties the buffer and returns all pending marks, played or not (Twilio's behaviour)."""
    playback = TwilioPlayback()
    playback.enqueue_audio(0, b"\x01" * 800)
    playback.enqueue_mark(0, "a")
    playback.enqueue_audio(0, b"\x02" * 800)
    playback.enqueue_mark(0, "b")
    assert playback.clear(50) == ["a", "b"]
    assert playback.bytes_cleared == 1200
    assert playback.queued_ms == 0
    playback.advance(60)
    assert bytes(playback.heard[400:]) == b"\xff" * 80
