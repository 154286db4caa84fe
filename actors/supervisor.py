"""CallSupervisor: one call as one nursery of actors (one_for_all).

The supervisor wires the actors with their channels, runs them in one nursery, and ends
the call when the first of them reports an end (Twilio's `stop`, a closed socket, a
protocol error, a fatal AI error) or when `end()` is called from outside (drain, an
operator). Ending cancels every actor; an actor that crashes ends the call as
`internal_error` and never touches another call. Whatever the path, `run` closes the
Twilio socket with the end's close code (the AI session closes its own socket) and
writes exactly one `call.summary` record.

Passthrough or transcode is decided here, once per call: with `pcmu` the AI reads the
reader's channel and the writer reads the AI's channel, and no codec actor exists.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
import trio

from actors.ai_session import AISession
from actors.channels import DropOldestChannel
from actors.codec_worker import CodecWorker
from actors.downlink_writer import DownlinkWriter
from actors.errors import CloseCode
from actors.message_socket import MessageSocket, SocketConnector
from actors.messages import AssistantAudio, BargeIn, CallEnd, EndReason
from actors.realtime import AudioFormat, SessionConfig
from actors.summary import CallSummary
from actors.twilio_media import Dtmf, Mark, Start, TwilioMediaProtocol
from actors.twilio_reader import TwilioReader

log = structlog.get_logger("actors.supervisor")

Actor = Callable[[], Awaitable[CallEnd | None]]

# Closing a socket whose peer stopped reading must not hold a call's resources forever.
CLOSE_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class CallSettings:
    session: SessionConfig
    greet_first: bool = True
    caller_audio_frames: int = 50  # 1 s of 20 ms frames; older caller audio is dropped
    assistant_audio_pieces: int = 1024  # provider deltas in flight to the writer


class CallSupervisor:
    def __init__(
        self,
        start: Start,
        twilio: MessageSocket,
        protocol: TwilioMediaProtocol,
        ai: SocketConnector,
        settings: CallSettings,
    ) -> None:
        self.start = start
        self._twilio = twilio
        self._protocol = protocol
        self._settings = settings
        self._scope = trio.CancelScope()
        self._end: CallEnd | None = None
        self._wire(ai)

    def end(self, end: CallEnd) -> None:
        """End the call for `end.reason` unless it already ended; every actor is cancelled."""
        if self._end is None:
            self._end = end
        self._scope.cancel()

    async def run(self) -> CallSummary:
        started_wall, started = time.time(), trio.current_time()
        ids = {"call_sid": self.start.call_sid, "stream_sid": self.start.stream_sid}
        with structlog.contextvars.bound_contextvars(**ids):
            log.info("call.started", audio_format=self._settings.session.audio_format.value)
            try:
                with self._scope:
                    async with trio.open_nursery() as nursery:
                        for name, actor in self._actors.items():
                            nursery.start_soon(self._supervise, name, actor, name=name)
            finally:
                end = self._end or CallEnd(EndReason.SHUTDOWN, "cancelled", CloseCode.GOING_AWAY)
                await self._close_twilio(end)
                summary = self._summary(end, started_wall, trio.current_time() - started)
                log.info("call.summary", **summary.log_fields())
        return summary

    async def _supervise(self, name: str, actor: Actor) -> None:
        structlog.contextvars.bind_contextvars(actor=name)
        try:
            end = await actor()
        except Exception as exc:
            log.exception("actor.crashed")
            end = CallEnd(EndReason.INTERNAL_ERROR, f"{name}: {exc!r}", CloseCode.INTERNAL_ERROR)
        if end is not None:
            self.end(end)

    async def _close_twilio(self, end: CallEnd) -> None:
        with trio.move_on_after(CLOSE_TIMEOUT_SECONDS, shield=True):
            await self._twilio.close(end.close_code, end.reason.value)

    def _wire(self, ai: SocketConnector) -> None:
        settings = self._settings
        transcode = settings.session.audio_format is AudioFormat.PCM24K
        caller = DropOldestChannel[bytes]("caller_audio", settings.caller_audio_frames)
        caller_pcm = DropOldestChannel[bytes]("caller_pcm", settings.caller_audio_frames)
        assistant = DropOldestChannel[AssistantAudio]("assistant_audio", settings.assistant_audio_pieces)
        assistant_ulaw = DropOldestChannel[AssistantAudio]("assistant_ulaw", settings.assistant_audio_pieces)
        barge_in_tx, barge_in_rx = trio.open_memory_channel[BargeIn](8)
        mark_tx, mark_rx = trio.open_memory_channel[Mark](64)
        dtmf_tx, dtmf_rx = trio.open_memory_channel[Dtmf](16)
        ai_input = caller_pcm if transcode else caller
        writer_input = assistant_ulaw if transcode else assistant
        self.reader = TwilioReader(self._twilio, self._protocol, caller, mark_tx, dtmf_tx)
        self.ai = AISession(
            ai,
            settings.session,
            caller_audio=ai_input,
            assistant_audio=assistant,
            barge_ins=barge_in_tx,
            dtmf=dtmf_rx,
            greet_first=settings.greet_first,
        )
        self.writer = DownlinkWriter(self._twilio, self._protocol, writer_input, barge_in_rx, mark_rx)
        self._actors: dict[str, Actor] = {
            "twilio_reader": self.reader.run,
            "ai_session": self.ai.run,
            "downlink_writer": self.writer.run,
        }
        self.channels: list[DropOldestChannel[Any]] = [caller, assistant]
        if transcode:
            codec = CodecWorker(caller, caller_pcm, assistant, assistant_ulaw)
            self._actors["codec_worker"] = codec.run
            self.channels += [caller_pcm, assistant_ulaw]

    def _summary(self, end: CallEnd, started_wall: float, duration: float) -> CallSummary:
        return CallSummary(
            call_sid=self.start.call_sid,
            stream_sid=self.start.stream_sid,
            account_sid=self.start.account_sid,
            started_at=started_wall,
            duration_s=duration,
            end=end,
            audio_format=self._settings.session.audio_format.value,
            frames_in=self.reader.frames_in,
            frames_out=self.writer.frames_out,
            drops={channel.name: channel.stats.dropped for channel in self.channels},
            peak_depths={channel.name: channel.stats.peak_depth for channel in self.channels},
            barge_ins=self.ai.stats.barge_ins,
            clears_sent=self.writer.clears_sent,
            stale_audio_discarded=self.writer.stale_discarded + self.ai.stats.late_deltas_discarded,
            marks_sent=self.writer.marks_sent,
            marks_echoed=self.writer.marks_echoed,
            dtmf_digits=self.reader.dtmf_digits,
            twilio_sequence_gaps=self._protocol.sequence_gaps,
            ai_appends_sent=self.ai.stats.appends_sent,
            ai_deltas_received=self.ai.stats.deltas_received,
            ai_responses=self.ai.stats.responses,
            ai_errors=self.ai.stats.errors,
            ai_usage=dict(self.ai.stats.usage),
        )
