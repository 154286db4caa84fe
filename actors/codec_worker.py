"""CodecWorker: the actor that transcodes call audio when the AI does not take G.711.

Uplink: mu-law 8 kHz frames -> PCM16 24 kHz (table decode, 1:3 polyphase FIR).
Downlink: PCM16 24 kHz assistant audio -> mu-law 8 kHz (3:1 FIR decimation, table encode).

It runs only for the `pcm24k` audio format: with `pcmu` the supervisor wires the
channels straight through and no sample is touched, decided once per call.
Filter state carries across frames; it restarts after a gap in the caller's audio (a
dropped frame) and at the start of every assistant item, so no audio from one item
rings into the next.
"""

from __future__ import annotations

import numpy as np
import trio

from actors import g711
from actors.channels import DropOldestChannel
from actors.messages import AssistantAudio, CallerFrame
from actors.resample import TAPS, Downsampler, Upsampler

# Zeros fed after an item's last sample push the filter's delayed tail (1.67 ms) out.
_TAIL = np.zeros(TAPS // 2, dtype=np.int16)


class CodecWorker:
    def __init__(
        self,
        caller_ulaw: DropOldestChannel[CallerFrame],
        caller_pcm: DropOldestChannel[CallerFrame],
        assistant_pcm: DropOldestChannel[AssistantAudio],
        assistant_ulaw: DropOldestChannel[AssistantAudio],
    ) -> None:
        self._caller_ulaw = caller_ulaw
        self._caller_pcm = caller_pcm
        self._assistant_pcm = assistant_pcm
        self._assistant_ulaw = assistant_ulaw
        self._upsampler = Upsampler(3)
        self._downsampler = Downsampler(3)
        self._item: tuple[int, str] = (0, "")
        self._odd_byte = b""

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._uplink)
            nursery.start_soon(self._downlink)

    async def _uplink(self) -> None:
        dropped = 0
        try:
            async for received_at, frame in self._caller_ulaw:
                if self._caller_ulaw.stats.dropped != dropped:
                    dropped = self._caller_ulaw.stats.dropped
                    self._upsampler.reset()
                pcm = self._upsampler.process(g711.decode(frame))
                self._caller_pcm.send_nowait((received_at, pcm.tobytes()))
        finally:
            self._caller_pcm.close()

    async def _downlink(self) -> None:
        try:
            async for piece in self._assistant_pcm:
                ulaw = self._transcode(piece)
                self._assistant_ulaw.send_nowait(
                    AssistantAudio(piece.generation, piece.item_id, ulaw, piece.item_done, piece.received_at)
                )
        finally:
            self._assistant_ulaw.close()

    def _transcode(self, piece: AssistantAudio) -> bytes:
        if (piece.generation, piece.item_id) != self._item:
            self._item = (piece.generation, piece.item_id)
            self._downsampler.reset()
            self._odd_byte = b""
        data = self._odd_byte + piece.audio
        whole = len(data) & ~1  # a delta may split a 16-bit sample; carry the odd byte
        self._odd_byte = data[whole:]
        pcm = self._downsampler.process(np.frombuffer(data[:whole], dtype="<i2"))
        if piece.item_done:
            pcm = np.concatenate((pcm, self._downsampler.process(_TAIL)))
        return g711.encode(pcm)
