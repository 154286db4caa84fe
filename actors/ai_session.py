"""AISession: the actor that owns the realtime AI socket for one call.

It opens the socket through a `SocketConnector`, configures the session, streams caller
audio up, and turns what the model says into `AssistantAudio` for the downlink. On the
provider's `speech_started` it starts a new barge-in generation: the downlink drops
older audio and clears Twilio's buffer, and late deltas of the interrupted response are
discarded here. Errors the provider reports are logged; fatal ones end the call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog
import trio

from actors import realtime
from actors.channels import DropOldestChannel
from actors.errors import CloseCode, RemoteProtocolError
from actors.message_socket import ConnectFailed, MessageSocket, SocketClosed, SocketConnector
from actors.messages import AssistantAudio, BargeIn, CallEnd, EndReason
from actors.realtime import (
    AudioDelta,
    AudioDone,
    RealtimeError,
    ResponseCreated,
    ResponseDone,
    SessionConfig,
    SessionCreated,
    SpeechStarted,
)
from actors.twilio_media import Dtmf

log = structlog.get_logger("actors.ai_session")


@dataclass(slots=True)
class AISessionStats:
    appends_sent: int = 0
    deltas_received: int = 0
    late_deltas_discarded: int = 0
    barge_ins: int = 0
    responses: int = 0
    errors: int = 0
    usage: dict[str, int] = field(default_factory=dict)

    def add_usage(self, usage: dict[str, Any]) -> None:
        for key in ("input_tokens", "output_tokens", "total_tokens"):
            value = usage.get(key)
            if isinstance(value, int):
                self.usage[key] = self.usage.get(key, 0) + value


class AISession:
    def __init__(
        self,
        connector: SocketConnector,
        config: SessionConfig,
        *,
        caller_audio: DropOldestChannel[bytes],
        assistant_audio: DropOldestChannel[AssistantAudio],
        barge_ins: trio.MemorySendChannel[BargeIn],
        dtmf: trio.MemoryReceiveChannel[Dtmf],
        greet_first: bool = True,
    ) -> None:
        self._connector = connector
        self._config = config
        self._caller_audio = caller_audio
        self._assistant_audio = assistant_audio
        self._barge_ins = barge_ins
        self._dtmf = dtmf
        self._greet_first = greet_first
        self.stats = AISessionStats()
        self.generation = 0
        self._active_response: str | None = None
        self._interrupted: set[str] = set()
        self._close_code = CloseCode.NORMAL

    async def run(self) -> CallEnd:
        try:
            async with self._connector.connect() as socket:
                try:
                    return await self._converse(socket)
                finally:
                    await socket.close(self._close_code)
        except ConnectFailed as exc:
            return CallEnd(EndReason.AI_UNAVAILABLE, exc.reason, CloseCode.TRY_AGAIN_LATER)
        finally:
            self._assistant_audio.close()

    async def _converse(self, socket: MessageSocket) -> CallEnd:
        try:
            await socket.send(realtime.session_update(self._config))
            if self._greet_first:
                await socket.send(realtime.response_create())
        except SocketClosed as exc:
            return _ai_closed(exc)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._send_caller_audio, socket)
            nursery.start_soon(self._report_dtmf)
            end = await self._follow_server(socket)
            nursery.cancel_scope.cancel()
        return end

    async def _send_caller_audio(self, socket: MessageSocket) -> None:
        append = realtime.input_audio_append
        stats = self.stats
        try:
            async for audio in self._caller_audio:
                await socket.send(append(audio))
                stats.appends_sent += 1
        except SocketClosed:
            return  # the receive loop sees the same close and ends the session

    async def _report_dtmf(self) -> None:
        async for event in self._dtmf:
            log.info("call.dtmf", digit=event.digit)

    async def _follow_server(self, socket: MessageSocket) -> CallEnd:
        try:
            while True:
                event = realtime.parse_server_event(await socket.receive())
                end = await self._on_event(event)
                if end is not None:
                    return end
        except SocketClosed as exc:
            return _ai_closed(exc)
        except RemoteProtocolError as exc:
            log.warning("ai.protocol_error", reason=exc.reason)
            self._close_code = exc.close_code
            return CallEnd(EndReason.AI_PROTOCOL_ERROR, exc.reason, CloseCode.INTERNAL_ERROR)

    async def _on_event(self, event: realtime.ServerEvent) -> CallEnd | None:
        if type(event) is AudioDelta:
            self._on_audio(event)
        elif type(event) is AudioDone:
            if event.response_id not in self._interrupted:
                self._assistant_audio.send_nowait(
                    AssistantAudio(self.generation, event.item_id, b"", item_done=True)
                )
        elif type(event) is SpeechStarted:
            await self._on_speech_started(event)
        elif type(event) is ResponseCreated:
            self._active_response = event.response_id
        elif type(event) is ResponseDone:
            self._on_response_done(event)
        elif type(event) is RealtimeError:
            return self._on_error(event)
        elif type(event) is SessionCreated:
            log.info("ai.session_created", session_id=event.session_id, expires_at=event.expires_at)
        return None

    def _on_audio(self, event: AudioDelta) -> None:
        self.stats.deltas_received += 1
        if event.response_id in self._interrupted:
            self.stats.late_deltas_discarded += 1
            return
        self._assistant_audio.send_nowait(AssistantAudio(self.generation, event.item_id, event.audio))

    async def _on_speech_started(self, event: SpeechStarted) -> None:
        self.generation += 1
        self.stats.barge_ins += 1
        interrupted = self._active_response
        if interrupted is not None:
            self._interrupted.add(interrupted)
        log.info("call.barge_in", generation=self.generation, interrupted_response=interrupted)
        await self._barge_ins.send(BargeIn(self.generation))

    def _on_response_done(self, event: ResponseDone) -> None:
        self.stats.responses += 1
        if event.usage is not None:
            self.stats.add_usage(dict(event.usage))
        if self._active_response == event.response_id:
            self._active_response = None
        self._interrupted.discard(event.response_id)
        log.info(
            "ai.response_done",
            response_id=event.response_id,
            status=event.status,
            status_reason=event.status_reason,
        )

    def _on_error(self, event: RealtimeError) -> CallEnd | None:
        self.stats.errors += 1
        log.warning(
            "ai.error",
            code=event.code,
            error_type=event.type,
            message=event.message,
            param=event.param,
            fatal=event.is_fatal,
        )
        if event.is_fatal:
            return CallEnd(EndReason.AI_ERROR, event.code or event.message, CloseCode.INTERNAL_ERROR)
        return None


def _ai_closed(exc: SocketClosed) -> CallEnd:
    detail = f"code {exc.code}" + (f": {exc.reason}" if exc.reason else "")
    return CallEnd(EndReason.AI_CLOSED, detail, CloseCode.INTERNAL_ERROR)
