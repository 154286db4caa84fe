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

    def test_a_mark_echo_resets_the_estimate_to_what_twilio_reports(self):
        """If Twilio plays late, the echo of a mark moves the lead to what is really left."""
        clock = PlayoutClock(mark_interval_ms=100)
        marks = send(clock, 1.0, "i1", 10)  # 200 ms, a mark after each 100 ms
        assert clock.echoed(1.15, marks[0]) == []  # Twilio reached the first mark 50 ms late
        assert clock.lead_ms(1.15) == pytest.approx(100)


class TestHeard:
    def test_heard_interpolates_between_marks_and_stops_at_the_next_unechoed_one(self):
        """The ear moves at real time from the last echo, but never past a mark that has not come back."""
        clock = PlayoutClock(mark_interval_ms=100)
        marks = send(clock, 0.0, "i1", 15)  # 300 ms of audio, marks at 100, 200, 300
        clock.echoed(0.1, marks[0])
        assert clock.heard(0.13) == [HeardItem("i1", 130, 300)]
        assert clock.heard(0.5) == [HeardItem("i1", 200, 300)]  # capped: the 200 ms mark is still out

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
