"""PlayoutClock: what Twilio holds and what the caller heard, from sends and echoed marks."""

import pytest

from actors.playout import HeardItem, PlayoutClock


def send(clock, now, item, frames, generation=0):
    """Send `frames` 20 ms frames of `item` at `now` seconds; return the marks sent."""
    marks = []
    for _ in range(frames):
        clock.sent_frame(now, item, 20)
        if clock.mark_due():
            marks.append(clock.sent_mark(generation))
    return marks


class TestLead:
    def test_lead_grows_with_sends_and_shrinks_at_real_time(self):
        """Sending 100 ms at once puts Twilio 100 ms ahead; 40 ms later 60 ms remain."""
        clock = PlayoutClock()
        send(clock, 1.0, "i1", 5)
        assert clock.lead_ms(1.0) == pytest.approx(100)
        assert clock.lead_ms(1.04) == pytest.approx(60)
        assert clock.lead_ms(2.0) == 0

    def test_an_echo_far_later_than_the_network_explains_moves_the_lead_back(self):
        """Playback that fell behind (Twilio reached a mark 100 ms late, where earlier echoes
        came on time) leaves more audio at Twilio than the send-side clock says."""
        clock = PlayoutClock(mark_interval_ms=100)
        marks = send(clock, 1.0, "i1", 15)  # 300 ms, a mark after each 100 ms
        assert clock.echoed(1.1, marks[0]) == []  # on time: no delay on this path
        assert clock.echoed(1.3, marks[1]) == []  # the 200 ms mark, 100 ms late
        assert clock.lead_ms(1.3) == pytest.approx(100)
        assert clock.heard(1.3) == [HeardItem("i1", 200, 300)]


class TestHeard:
    def test_heard_moves_at_real_time_from_where_playback_started_up_to_what_was_sent(self):
        """Between echoes the ear moves at 8 bytes a ms; it never passes the audio sent."""
        clock = PlayoutClock(mark_interval_ms=100)
        marks = send(clock, 0.0, "i1", 15)  # 300 ms of audio, marks at 100, 200, 300
        clock.echoed(0.1, marks[0])
        assert clock.heard(0.13) == [HeardItem("i1", 130, 300)]
        assert clock.heard(0.5) == [HeardItem("i1", 300, 300)]

    @pytest.mark.parametrize("delay_ms", [0, 15, 40, 90])
    def test_the_one_way_delay_is_learnt_from_echoes_so_heard_matches_the_ear(self, delay_ms):
        """Audio paced 100 ms ahead reaches Twilio a network delay after it is sent, and each
        echo takes as long to come back (and is seen up to a 20 ms frame late): what the
        clock says was heard stays within a frame of what the caller really heard."""
        clock = PlayoutClock(mark_interval_ms=100)
        delay, frame = delay_ms / 1000, 0.020
        first = 1.0
        pending = []  # (when the echo arrives, name)
        errors = []
        for k in range(200):  # 4 s of audio, one frame each 20 ms after a 100 ms head start
            now = first + max(0, k - 5) * frame
            while pending and pending[0][0] <= now:
                clock.echoed(*pending.pop(0))
            clock.sent_frame(now, "i1", 20)
            if clock.mark_due():
                name = clock.sent_mark(0)
                played = first + delay + (k + 1) * frame  # Twilio reaches the mark
                pending.append((played + delay + frame * (k % 3) / 2, name))
            truth = (now - first - delay) * 1000
            if truth > 0 and k > 20:
                errors.append(clock.heard(now)[0].heard_ms - truth)
        assert max(abs(e) for e in errors) <= 20

    def test_playback_restarts_where_a_frame_lands_on_an_idle_twilio(self):
        """Audio sent after Twilio ran dry starts playing when it is sent, not when the last audio ended."""
        clock = PlayoutClock(mark_interval_ms=1000)
        send(clock, 0.0, "i1", 5)
        clock.sent_mark(0, item_end="i1")
        echoed = clock.echoed(0.1, "0.1")
        assert echoed == ["i1"]
        send(clock, 5.0, "i2", 5)  # seconds later, a new item
        assert [h for h in clock.heard(5.06) if h.item_id == "i2"] == [HeardItem("i2", 60, 100)]

    def test_clear_reports_each_item_and_forgets_outstanding_marks(self):
        """clear() says how much of each item was heard; echoes of cleared marks are then stale."""
        clock = PlayoutClock(mark_interval_ms=100)
        marks = send(clock, 0.0, "i1", 10)
        clock.echoed(0.1, marks[0])
        heard = clock.clear(0.15)
        assert heard == [HeardItem("i1", 150, 200)]
        assert clock.echoed(0.15, marks[1]) is None  # Twilio echoes it after the clear: ignored
        assert clock.drained(0.15)

    def test_marks_come_back_in_order_and_a_later_echo_implies_the_earlier(self):
        """If an echo is missed, the next one still moves the ear (Twilio echoes in order)."""
        clock = PlayoutClock(mark_interval_ms=100)
        marks = send(clock, 0.0, "i1", 10)
        clock.sent_mark(0, item_end="i1")
        assert clock.echoed(0.2, "0.3") == ["i1"]  # the end mark, with the 200 ms mark skipped
        assert clock.heard(0.2) == [HeardItem("i1", 200, 200)]
        assert clock.drained(0.2)
        assert marks  # (both marks were sent)

    def test_items_fully_heard_are_forgotten(self):
        """Memory stays bounded: items behind the ear are dropped, except the newest."""
        clock = PlayoutClock(mark_interval_ms=1000)
        for index in range(50):
            send(clock, index, f"i{index}", 1)
            clock.echoed(index + 0.02, clock.sent_mark(0, item_end=f"i{index}"))
        assert len(clock.heard(100)) == 1
