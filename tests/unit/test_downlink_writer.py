"""DownlinkWriter: paced playout, marks, barge-in with what was heard, underruns."""

from contextlib import asynccontextmanager

import pytest
import trio

from actors.channels import DropOldestChannel
from actors.downlink_writer import DownlinkWriter
from actors.messages import AssistantAudio, BargeIn, Heard, ItemHeard, PlayoutBusy, PlayoutIdle
from actors.twilio_media import Dtmf, Mark, TwilioMediaProtocol
from actors.twilio_reader import TwilioReader
from tests.fakes import FakeTwilio
from tests.memory_socket import socket_pair
from tests.unit.test_twilio_media import start

LEAD_MS = 100


class Harness:
    def __init__(self, nursery):
        gateway_end, twilio_end = socket_pair(buffer=4096)
        protocol = TwilioMediaProtocol()
        protocol.receive(start())
        self.audio = DropOldestChannel[AssistantAudio]("assistant_audio", 4096)
        self.barge_in_tx, barge_in_rx = trio.open_memory_channel[BargeIn](8)
        mark_tx, mark_rx = trio.open_memory_channel[Mark](64)
        dtmf_tx, _ = trio.open_memory_channel[Dtmf](8)
        report_tx, self.reports = trio.open_memory_channel(256)
        self.twilio = FakeTwilio(twilio_end)
        reader = TwilioReader(
            gateway_end, protocol, caller_audio=DropOldestChannel("caller", 50), marks=mark_tx, dtmf=dtmf_tx
        )
        self.writer = DownlinkWriter(
            gateway_end,
            protocol,
            assistant_audio=self.audio,
            barge_ins=barge_in_rx,
            marks=mark_rx,
            reports=report_tx,
            lead_ms=LEAD_MS,
        )
        nursery.start_soon(self.twilio.run)
        nursery.start_soon(reader.run)
        nursery.start_soon(self.writer.run)

    def speak(self, item, audio, generation=0, done=True):
        for offset in range(0, len(audio), 800):
            self.audio.send_nowait(AssistantAudio(generation, item, audio[offset : offset + 800]))
        if done:
            self.audio.send_nowait(AssistantAudio(generation, item, b"", item_done=True))

    def collected_reports(self):
        reports = []
        while True:
            try:
                reports.append(self.reports.receive_nowait())
            except trio.WouldBlock:
                return reports


@asynccontextmanager
async def harness():
    async with trio.open_nursery() as nursery:
        yield Harness(nursery)
        nursery.cancel_scope.cancel()


def speech(ms, fill=0x11):
    return bytes([fill]) * (8 * ms)


class TestPacing:
    async def test_audio_leaves_at_real_time_in_100_ms_messages_with_a_bounded_lead(self, autojump_clock):
        """A second of audio arriving at once goes out as ten 100 ms media messages, each as the
        lead falls to 100 ms: never more than lead + one message ahead of the ear."""
        async with harness() as h:
            h.speak("i1", speech(1000))
            await trio.sleep(2)
            times = h.twilio.media_times
            sizes = h.twilio.media_sizes
        assert sizes == [800] * 10
        for sent, when in enumerate(times, start=1):
            ahead_ms = sent * 100 - (when - times[0]) * 1000
            assert LEAD_MS - 1e-6 <= ahead_ms <= LEAD_MS + 100 + 1e-6
        assert (times[-1] - times[0]) * 1000 == pytest.approx(1000 - LEAD_MS - 100, abs=1)

    async def test_the_caller_hears_the_item_whole_with_no_gap(self, autojump_clock):
        """Audio streamed faster than real time plays back contiguous: no underrun."""
        async with harness() as h:
            audio = bytes(range(1, 201)) * 40  # 1 s of distinct bytes
            h.speak("i1", audio)
            await trio.sleep(2)
            heard = bytes(h.twilio.playback.heard)
        assert audio in heard
        assert h.writer.underruns == 0

    async def test_marks_follow_each_chunk_and_the_item_end(self, autojump_clock):
        """A mark per 100 ms of an item and one after its last frame; its echo reports the item heard."""
        async with harness() as h:
            h.speak("i1", speech(450))
            await trio.sleep(1)
            reports = h.collected_reports()
        assert len(h.twilio.marks) == 5  # after 100, 200, 300, 400 ms, and the end at 450 ms
        assert all(name.startswith("0.") for name in h.twilio.marks)
        assert reports == [PlayoutBusy(), ItemHeard("i1"), PlayoutIdle()]


class TestBargeIn:
    async def test_clear_is_sent_and_what_the_caller_heard_is_reported(self, autojump_clock):
        """On barge-in: clear at once; the heard position matches Twilio's playback to the ms."""
        async with harness() as h:
            h.speak("i1", speech(2000))
            await trio.sleep(0.7)
            detected = trio.current_time()
            await h.barge_in_tx.send(BargeIn(1, detected))
            await trio.sleep(0.1)
            reports = h.collected_reports()
            played_ms = h.twilio.playback.audio_bytes_played / 8
        heard = next(report for report in reports if isinstance(report, Heard))
        assert h.twilio.clear_times[0] - detected < 0.001
        assert heard.items[0].item_id == "i1"
        assert abs(heard.items[0].heard_ms - played_ms) <= 20
        assert h.twilio.playback.bytes_cleared > 0

    async def test_older_generation_audio_is_discarded_newer_plays(self, autojump_clock):
        """After a barge-in, late audio of the cut response is dropped and the next response plays."""
        async with harness() as h:
            h.speak("i1", speech(1000), done=False)
            await trio.sleep(0.3)
            await h.barge_in_tx.send(BargeIn(1, trio.current_time()))
            await trio.sleep(0.05)
            h.speak("i1", speech(500, 0x22), generation=0)  # late deltas of the interrupted item
            h.speak("i2", speech(300, 0x33), generation=1)
            await trio.sleep(1)
            heard = bytes(h.twilio.playback.heard)
        assert speech(300, 0x33) in heard
        assert b"\x22" not in heard
        assert h.writer.stale_discarded > 0

    async def test_newer_audio_implies_a_barge_in_not_yet_seen(self, autojump_clock):
        """Audio of a newer generation arriving before its BargeIn still clears the old audio first."""
        async with harness() as h:
            h.speak("i1", speech(1000), done=False)
            await trio.sleep(0.3)
            h.speak("i2", speech(200, 0x44), generation=1)
            await trio.sleep(1)
        assert len(h.twilio.clear_times) == 1
        assert h.writer.clears_sent == 1


class TestUnderruns:
    async def test_audio_arriving_after_twilio_ran_dry_is_counted(self, autojump_clock):
        """A provider slower than real time leaves gaps in an item; each gap is one underrun."""
        async with harness() as h:
            for _ in range(3):
                h.speak("i1", speech(100), done=False)
                await trio.sleep(0.3)
            h.audio.send_nowait(AssistantAudio(0, "i1", b"", item_done=True))
            await trio.sleep(0.2)
        assert h.writer.underruns == 2


class SlowSend:
    """A Twilio socket whose media sends take a while (a congested connection)."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.sending = trio.Event()

    async def receive(self) -> str:
        await trio.sleep_forever()

    async def send(self, message: str) -> None:
        if '"event":"media"' in message:
            self.sending.set()
            await trio.sleep(0.05)
        self.sent.append(message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await trio.lowlevel.checkpoint()


async def test_a_frame_on_its_way_when_a_barge_in_lands_is_not_booked_into_the_new_timeline(autojump_clock):
    """The clear follows the frame on the wire, so Twilio drops it: the new generation's
    timeline starts empty (no lead, nothing heard) instead of counting the cleared frame."""
    socket = SlowSend()
    protocol = TwilioMediaProtocol()
    protocol.receive(start())
    audio = DropOldestChannel[AssistantAudio]("assistant_audio", 64)
    barge_in_tx, barge_in_rx = trio.open_memory_channel[BargeIn](8)
    _, mark_rx = trio.open_memory_channel[Mark](8)
    report_tx, _reports = trio.open_memory_channel(64)
    writer = DownlinkWriter(
        socket, protocol, assistant_audio=audio, barge_ins=barge_in_rx, marks=mark_rx, reports=report_tx
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer.run)
        audio.send_nowait(AssistantAudio(0, "i1", speech(20)))
        await socket.sending.wait()
        await barge_in_tx.send(BargeIn(1, trio.current_time(), "provider"))
        await trio.sleep(0.2)
        assert writer.clock.lead_ms(trio.current_time()) == 0
        assert not writer.clock.mark_due()
        assert writer.frames_out == 1  # it did leave
        nursery.cancel_scope.cancel()
