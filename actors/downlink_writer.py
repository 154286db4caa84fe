"""DownlinkWriter: the actor that owns the send side of the Twilio media socket.

It cuts assistant audio (mu-law) into 20 ms frames of 160 bytes, the size Twilio itself
sends and the size users found to play without jitter; it sends the tail of an item as a
short frame rather than holding it. After each item it sends a `mark`, which Twilio
echoes once the caller has heard the item.

Barge-in: a `BargeIn` raises the generation; what was already sent is cleared from
Twilio's buffer with `clear`, and audio of older generations, queued or still in
flight, is discarded on arrival (counted as `stale_discarded`). Audio of a newer
generation than the writer knows implies a barge-in it has not seen yet, so it applies
that barge-in first: the two inboxes may be served in either order, and the result is
the same.
"""

from __future__ import annotations

import structlog
import trio

from actors.channels import DropOldestChannel
from actors.message_socket import MessageSocket, SocketClosed
from actors.messages import AssistantAudio, BargeIn, CallEnd, EndReason
from actors.twilio_media import Mark, TwilioMediaProtocol

log = structlog.get_logger("actors.downlink_writer")

FRAME_BYTES = 160  # 20 ms of 8 kHz mu-law


class DownlinkWriter:
    def __init__(
        self,
        socket: MessageSocket,
        protocol: TwilioMediaProtocol,
        assistant_audio: DropOldestChannel[AssistantAudio],
        barge_ins: trio.MemoryReceiveChannel[BargeIn],
        marks: trio.MemoryReceiveChannel[Mark],
    ) -> None:
        self._socket = socket
        self._protocol = protocol
        self._audio = assistant_audio
        self._barge_ins = barge_ins
        self._marks = marks
        self._generation = 0
        self._pending = bytearray()
        self._pending_item = ""
        self.frames_out = 0
        self.clears_sent = 0
        self.marks_sent = 0
        self.marks_echoed = 0
        self.stale_discarded = 0

    async def run(self) -> CallEnd | None:
        end: CallEnd | None = None
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._follow_barge_ins)
                nursery.start_soon(self._follow_marks)
                await self._play()
                nursery.cancel_scope.cancel()
        except* SocketClosed as group:
            closed = group.exceptions[0]
            assert isinstance(closed, SocketClosed)
            end = CallEnd(EndReason.TWILIO_CLOSED, f"send failed: code {closed.code}")
        return end

    async def _play(self) -> None:
        async for piece in self._audio:
            if piece.generation < self._generation:
                self.stale_discarded += 1
                continue
            if piece.generation > self._generation:
                await self._barge_in(piece.generation)
            await self._frame(piece)

    async def _frame(self, piece: AssistantAudio) -> None:
        if piece.item_id != self._pending_item:
            await self._send_pending()
            self._pending_item = piece.item_id
        pending = self._pending
        pending += piece.audio
        while len(pending) >= FRAME_BYTES:
            await self._send_media(bytes(pending[:FRAME_BYTES]))
            del pending[:FRAME_BYTES]
        if piece.item_done:
            await self._send_pending()
            await self._socket.send(self._protocol.mark(f"{piece.generation}:{piece.item_id}:end"))
            self.marks_sent += 1

    async def _send_pending(self) -> None:
        if self._pending:
            await self._send_media(bytes(self._pending))
            self._pending.clear()

    async def _send_media(self, frame: bytes) -> None:
        await self._socket.send(self._protocol.media(frame))
        self.frames_out += 1

    async def _follow_barge_ins(self) -> None:
        async for barge_in in self._barge_ins:
            if barge_in.generation > self._generation:
                await self._barge_in(barge_in.generation)

    async def _barge_in(self, generation: int) -> None:
        self._generation = generation
        self._pending.clear()
        await self._socket.send(self._protocol.clear())
        self.clears_sent += 1
        log.debug("downlink.cleared", generation=generation)

    async def _follow_marks(self) -> None:
        async for _mark in self._marks:
            self.marks_echoed += 1
