"""DownlinkWriter: the actor that owns the send side of the Twilio media socket.

Paced playout: assistant audio (mu-law) is cut into 20 ms frames of 160 bytes and sent
at real time, a small lead (default 100 ms) ahead of the caller's ear, so a `clear`
never has much to throw away and Twilio never runs dry while the AI streams faster than
real time. Frames leave in media messages of up to `mark_interval_ms` (100 ms by
default): whenever the lead has fallen to `lead_ms`, the next message goes, and a mark
follows it in the same write (a mark follows every `mark_interval_ms` of an item and
its last frame). Five times fewer messages and wake-ups than a message per frame, for
a lead that stays between `lead_ms` and `lead_ms + mark_interval_ms`. The writer pulls
from its drop-oldest inbox only when it needs a frame, so the AI's backlog waits there,
bounded and counted; the `PlayoutClock` turns the marks' echoes into what the caller
has heard.

Barge-in: a `BargeIn` of a newer generation clears Twilio's buffer at once, drops the
queued frames, and reports to the AI session how much of each item was heard (for
`conversation.item.truncate`). Audio of older generations, queued or late, is discarded
on arrival; audio of a newer generation than the writer knows implies a barge-in it
has not seen yet, which it applies first, so its two inboxes may be served in either
order with the same result.

Underruns: when a piece of an unfinished item arrives after Twilio's buffer ran dry,
the caller heard a gap; it is counted.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import structlog
import trio

from actors.barrier import leaf
from actors.channels import DropOldestChannel
from actors.errors import LocalProtocolError
from actors.events import CallEvents, NoEvents
from actors.latency import LatencyHistogram
from actors.message_socket import MessageSocket, SocketClosed, batch_sender
from actors.messages import (
    AssistantAudio,
    BargeIn,
    CallEnd,
    EndReason,
    Heard,
    ItemHeard,
    PlayoutBusy,
    PlayoutIdle,
    PlayoutReport,
)
from actors.playout import PlayoutClock
from actors.twilio_media import Mark, StreamState, TwilioMediaProtocol

log = structlog.get_logger("actors.downlink_writer")

FRAME_BYTES = 160  # 20 ms of 8 kHz mu-law
FRAME_MS = 20.0


@dataclass(frozen=True, slots=True)
class _Frame:
    item_id: str
    payload: bytes
    received_at: float = 0.0  # set on a frame that can leave at once: its latency is measured


@dataclass(frozen=True, slots=True)
class _ItemEnd:
    item_id: str


class DownlinkWriter:
    def __init__(
        self,
        socket: MessageSocket,
        protocol: TwilioMediaProtocol,
        *,
        assistant_audio: DropOldestChannel[AssistantAudio],
        barge_ins: trio.MemoryReceiveChannel[BargeIn],
        marks: trio.MemoryReceiveChannel[Mark],
        reports: trio.MemorySendChannel[PlayoutReport],
        lead_ms: float = 100.0,
        mark_interval_ms: float = 100.0,
        events: CallEvents | None = None,
    ) -> None:
        self._socket = socket
        self._send_batch = batch_sender(socket)
        self._protocol = protocol
        self._audio = assistant_audio
        self._barge_ins = barge_ins
        self._marks = marks
        self._reports = reports
        self._lead_ms = lead_ms
        self._message_bytes = max(FRAME_BYTES, int(mark_interval_ms * 8))
        self._events = events or NoEvents()
        self.clock = PlayoutClock(mark_interval_ms)
        self._generation = 0
        self._queue: deque[_Frame | _ItemEnd] = deque()
        self._pending = bytearray()
        self._pending_item = ""
        self._open_item = ""  # item whose last piece has not arrived yet
        self._playing = False
        self.frames_out = 0
        self.clears_sent = 0
        self.marks_sent = 0
        self.marks_echoed = 0
        self.stale_marks = 0
        self.stale_discarded = 0
        self.underruns = 0
        self.clear_latencies: list[float] = []
        self.latency = LatencyHistogram()  # AI delta in -> its first frame out, when not held for pacing

    async def run(self) -> CallEnd | None:
        end: CallEnd | None = None
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._follow_barge_ins)
                nursery.start_soon(self._follow_marks)
                await self._play()
                nursery.cancel_scope.cancel()
        except* SocketClosed as group:
            closed = leaf(group)
            assert isinstance(closed, SocketClosed)
            end = CallEnd(EndReason.TWILIO_CLOSED, f"send failed: code {closed.code}")
        except* LocalProtocolError:
            if self._protocol.state is StreamState.STREAMING:
                raise  # a bug of ours: the supervisor ends the call as internal_error
            # A send after Twilio's stop: the caller hung up, and the reader ends the call.
        return end

    # ---- playout -----------------------------------------------------------------

    async def _play(self) -> None:
        while True:
            if not self._queue:
                try:
                    piece = await self._audio.receive()
                except trio.EndOfChannel:
                    return
                await self._accept(piece)
                continue
            entry = self._queue[0]
            if isinstance(entry, _ItemEnd):
                self._queue.popleft()
                await self._send_mark(item_end=entry.item_id)
                continue
            if not self._may_send_now():  # (under 0.5 ms a sleep may return at once: a spin)
                await trio.sleep((self.clock.lead_ms(trio.current_time()) - self._lead_ms) / 1000)
                continue  # a barge-in may have emptied the queue meanwhile
            await self._send_message()

    async def _accept(self, piece: AssistantAudio) -> None:
        if piece.generation < self._generation:
            self.stale_discarded += 1
            return
        if piece.generation > self._generation:
            await self._barge_in(BargeIn(piece.generation, trio.current_time(), "implied"))
        if piece.audio and piece.item_id == self._open_item and self.clock.lead_ms(trio.current_time()) == 0:
            self.underruns += 1  # the item was still arriving, and Twilio had run dry
        if piece.item_id != self._pending_item:
            self._flush_pending()
            self._pending_item = piece.item_id
        # Only a frame that can leave at once measures the gateway: others wait on purpose.
        stamp = piece.received_at if not self._queue and self._may_send_now() else 0.0
        pending = self._pending
        pending += piece.audio
        whole = len(pending) - len(pending) % FRAME_BYTES
        for start in range(0, whole, FRAME_BYTES):
            self._queue.append(_Frame(piece.item_id, bytes(pending[start : start + FRAME_BYTES]), stamp))
            stamp = 0.0
        del pending[:whole]
        if piece.item_done:
            self._flush_pending()
            self._queue.append(_ItemEnd(piece.item_id))
            self._open_item = ""
        else:
            self._open_item = piece.item_id

    def _flush_pending(self) -> None:
        if self._pending:
            self._queue.append(_Frame(self._pending_item, bytes(self._pending)))
            self._pending.clear()

    def _may_send_now(self) -> bool:
        return self.clock.lead_ms(trio.current_time()) - self._lead_ms < 0.5

    def _take_message(self) -> tuple[_Frame, bytes]:
        """The frames at the head of the queue that go in the next media message: of one
        item, up to `mark_interval_ms` of it (the first frame, and the joined payload)."""
        queue = self._queue
        first = queue.popleft()
        assert isinstance(first, _Frame)
        payloads = [first.payload]
        size = len(first.payload)
        while queue and size < self._message_bytes:
            entry = queue[0]
            if not isinstance(entry, _Frame) or entry.item_id != first.item_id:
                break
            queue.popleft()
            payloads.append(entry.payload)
            size += len(entry.payload)
        return first, payloads[0] if len(payloads) == 1 else b"".join(payloads)

    async def _send_message(self) -> None:
        first, payload = self._take_message()
        messages = [self._protocol.media(payload)]
        now = trio.current_time()
        self.clock.sent_frame(now, first.item_id, len(payload) / 8)
        queue = self._queue
        if queue and isinstance(queue[0], _ItemEnd):  # the item's last frame: its end mark rides along
            ended = queue.popleft().item_id
            messages.append(self._protocol.mark(self.clock.sent_mark(self._generation, ended)))
        elif self.clock.mark_due():
            messages.append(self._protocol.mark(self.clock.sent_mark(self._generation)))
        generation = self._generation
        await self._send_batch(messages)
        self.frames_out += -(-len(payload) // FRAME_BYTES)
        self.marks_sent += len(messages) - 1
        if self._generation != generation:
            return  # a barge-in's clear followed these on the wire (and reset the clock)
        if first.received_at:
            self.latency.record(trio.current_time() - first.received_at)
        if not self._playing:
            self._playing = True
            await self._reports.send(PlayoutBusy())

    async def _send_mark(self, item_end: str = "") -> None:
        await self._socket.send(self._protocol.mark(self.clock.sent_mark(self._generation, item_end)))
        self.marks_sent += 1

    # ---- control -----------------------------------------------------------------

    async def _follow_barge_ins(self) -> None:
        async for barge_in in self._barge_ins:
            if barge_in.generation > self._generation:
                await self._barge_in(barge_in)

    async def _barge_in(self, barge_in: BargeIn) -> None:
        self._generation = barge_in.generation
        self._queue.clear()
        self._pending.clear()
        self._open_item = ""
        await self._socket.send(self._protocol.clear())
        now = trio.current_time()
        heard = self.clock.clear(now)
        self.clears_sent += 1
        latency_ms = (now - barge_in.detected_at) * 1000
        self.clear_latencies.append(latency_ms)
        details = {
            "generation": barge_in.generation,
            "source": barge_in.source,
            "clear_latency_ms": round(latency_ms, 3),
            "heard": {item.item_id: item.heard_ms for item in heard},
        }
        log.info("call.barge_in", **details)
        self._events.publish("barge_in", details)
        await self._reports.send(Heard(barge_in.generation, tuple(heard)))
        await self._report_idle()

    async def _follow_marks(self) -> None:
        async for mark in self._marks:
            ended = self.clock.echoed(trio.current_time(), mark.name)
            if ended is None:
                self.stale_marks += 1
                continue
            self.marks_echoed += 1
            for item_id in ended:
                await self._reports.send(ItemHeard(item_id))
            if not self._queue and not self._pending and self.clock.drained(trio.current_time()):
                await self._report_idle()

    async def _report_idle(self) -> None:
        if self._playing:
            self._playing = False
            await self._reports.send(PlayoutIdle())
