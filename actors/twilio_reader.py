"""TwilioReader: the actor that owns the receive side of the Twilio media socket.

It never blocks on audio: caller frames go to a drop-oldest channel, so a slow consumer
costs old audio, never the socket (a reader that stops reading stops noticing closes).
Marks and DTMF go to their owners on small lossless channels. Twilio's `stop`, a closed
socket or a protocol error ends the call.

With local barge-in enabled, the reader also runs an energy VAD on the caller's audio and
reports the moment speech starts, so the gateway can stop the assistant before the
provider's VAD (which needs a few hundred ms) reacts.
"""

from __future__ import annotations

import trio

from actors import g711
from actors.channels import DropOldestChannel
from actors.errors import RemoteProtocolError
from actors.message_socket import MessageSocket, SocketClosed
from actors.messages import CallEnd, CallerFrame, EndReason
from actors.twilio_media import Dtmf, Mark, Media, Stop, TwilioMediaProtocol
from actors.vad import EnergyVAD, SpeechStarted


class TwilioReader:
    def __init__(
        self,
        socket: MessageSocket,
        protocol: TwilioMediaProtocol,
        *,
        caller_audio: DropOldestChannel[CallerFrame],
        marks: trio.MemorySendChannel[Mark],
        dtmf: trio.MemorySendChannel[Dtmf],
        speech: tuple[EnergyVAD, trio.MemorySendChannel[float]] | None = None,
    ) -> None:
        self._socket = socket
        self._protocol = protocol
        self._caller_audio = caller_audio
        self._marks = marks
        self._dtmf = dtmf
        self._speech = speech
        self.frames_in = 0
        self.dtmf_digits = 0
        self.last_message_at = trio.current_time()  # Twilio sends media every 20 ms, silence too

    async def run(self) -> CallEnd:
        try:
            return await self._read()
        except SocketClosed as exc:
            return CallEnd(EndReason.TWILIO_CLOSED, f"code {exc.code}")
        except RemoteProtocolError as exc:
            return CallEnd(EndReason.TWILIO_PROTOCOL_ERROR, exc.reason, exc.close_code)
        finally:
            self._caller_audio.close()

    async def _read(self) -> CallEnd:
        receive = self._socket.receive
        parse = self._protocol.receive
        caller_audio = self._caller_audio
        now = trio.current_time
        while True:
            event = parse(await receive())
            self.last_message_at = at = now()
            if type(event) is Media:
                caller_audio.send_nowait((at, event.payload))
                self.frames_in += 1
                if self._speech is not None:
                    await self._listen(event.payload)
            elif type(event) is Mark:
                await self._marks.send(event)
            elif type(event) is Dtmf:
                self.dtmf_digits += 1
                await self._dtmf.send(event)
            elif type(event) is Stop:
                return CallEnd(EndReason.TWILIO_STOP)

    async def _listen(self, payload: bytes) -> None:
        assert self._speech is not None
        vad, started = self._speech
        for event in vad.feed(g711.decode(payload)):
            if isinstance(event, SpeechStarted):
                await started.send(trio.current_time())
