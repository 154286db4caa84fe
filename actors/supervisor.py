"""CallSupervisor: one call as one nursery of actors (one_for_all).

The supervisor wires the actors with their channels, runs them in one nursery, and ends
the call when the first of them reports an end (Twilio's `stop`, a closed socket, a
protocol error, the AI giving up, the AI hanging up or transferring) or when `end()` is
called from outside (drain, an operator). Ending cancels every actor; an actor that
crashes ends the call as `internal_error` and never touches another call. Whatever the
path, `run` closes the Twilio socket with the end's close code (the AI session closes
its own socket) and writes exactly one `call.summary` record.

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
from actors.ai_state import AISettings
from actors.barrier import contain, describe, leaf
from actors.call_control import CallControl
from actors.call_move import SaveTurns, move_at_turn_boundary
from actors.channels import DropOldestChannel
from actors.codec_worker import CodecWorker
from actors.downlink_writer import DownlinkWriter
from actors.errors import CloseCode
from actors.events import CallEvents, NoEvents
from actors.keypad import Keypad
from actors.message_socket import Liveness, MessageSocket, SocketConnector
from actors.messages import AssistantAudio, BargeIn, CallEnd, CallerFrame, EndReason, PlayoutReport
from actors.realtime import AudioFormat
from actors.summary import CallSummary
from actors.twilio_media import Dtmf, Mark, Start, TwilioMediaProtocol
from actors.twilio_reader import TwilioReader
from actors.vad import EnergyVAD
from actors.watchdog import wait_for_silence

log = structlog.get_logger("actors.supervisor")

Actor = Callable[[], Awaitable[CallEnd | None]]

# Closing a socket whose peer stopped reading must not hold a call's resources forever.
CLOSE_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class CallSettings:
    ai: AISettings
    playout_lead_ms: float = 100.0
    mark_interval_ms: float = 100.0
    local_barge_in: bool = False  # the gateway's own VAD stops the assistant before the provider's
    local_vad_threshold_db: float = -35.0
    dtmf_inter_digit_ms: float = 1000.0
    twilio_silence_s: float = 15.0  # no message at all from Twilio this long: the stream is gone
    caller_audio_frames: int = 50  # 1 s of 20 ms frames; older caller audio is dropped
    assistant_audio_pieces: int = 2048  # provider deltas waiting for playout (the AI's backlog)


@dataclass(frozen=True, slots=True)
class CallCounters:
    frames_in: int
    frames_out: int
    underruns: int
    drops: dict[str, int]  # by channel
    depths: dict[str, int]  # items queued now, by channel


class CallSupervisor:
    def __init__(
        self,
        start: Start,
        twilio: MessageSocket,
        protocol: TwilioMediaProtocol,
        ai: SocketConnector,
        settings: CallSettings,
        *,
        control: CallControl | None = None,
        events: CallEvents | None = None,
        summary_extras: dict[str, Any] | None = None,
        resumed: list[tuple[str, str]] | None = None,
    ) -> None:
        self.start = start
        self._summary_extras = summary_extras or {}
        self._twilio = twilio
        self._protocol = protocol
        self._settings = settings
        self._events = events or NoEvents()
        self._scope = trio.CancelScope()
        self._end: CallEnd | None = None
        self._operator_tx, operator_rx = trio.open_memory_channel[str](8)
        self._nursery: trio.Nursery | None = None
        self._moving = False
        self._wire(ai, control, operator_rx)
        for role, text in resumed or ():  # moved here from another instance: the talk so far
            self.ai.conversation.add_text(role, text)

    def move(self, save: SaveTurns, deadline_s: float) -> bool:
        """Move the call at its next turn boundary (`actors.call_move`); False if it is not
        running yet, or already moving."""
        if self._nursery is None or self._moving or self._end is not None:
            return False
        self._moving = True

        async def mover() -> CallEnd | None:  # started from outside the call: bind its ids here
            with structlog.contextvars.bound_contextvars(
                call_sid=self.start.call_sid, stream_sid=self.start.stream_sid
            ):
                return await move_at_turn_boundary(self.ai, save, deadline_s)

        self._nursery.start_soon(self._supervise, "mover", mover, name="mover")
        return True

    def say(self, text: str) -> None:
        """An operator asks the AI to tell the caller `text` next; refused if 8 are already waiting."""
        self._operator_tx.send_nowait(text)

    def counters(self) -> CallCounters:
        """The call's running totals, read by a metrics scrape (nothing is counted twice per frame)."""
        writer = self.writer
        return CallCounters(
            frames_in=self.reader.frames_in,
            frames_out=writer.frames_out,
            underruns=writer.underruns,
            drops={channel.name: channel.stats.dropped for channel in self.channels},
            depths={channel.name: len(channel) for channel in self.channels},
        )

    def end(self, end: CallEnd) -> None:
        """End the call for `end.reason` unless it already ended; every actor is cancelled."""
        if self._end is None:
            self._end = end
        self._scope.cancel()

    async def run(self) -> CallSummary:
        started_wall, started = time.time(), trio.current_time()
        ids = {"call_sid": self.start.call_sid, "stream_sid": self.start.stream_sid}
        with structlog.contextvars.bound_contextvars(**ids):
            log.info("call.started", audio_format=self._settings.ai.config.audio_format.value)
            self._events.publish("call.started", {"stream_sid": self.start.stream_sid})
            try:
                with self._scope:
                    async with trio.open_nursery() as nursery:
                        self._nursery = nursery
                        for name, actor in self._actors.items():
                            nursery.start_soon(self._supervise, name, actor, name=name)
            finally:
                self._nursery = None
                end = self._end or CallEnd(EndReason.SHUTDOWN, "cancelled", CloseCode.GOING_AWAY)
                await self._close_twilio(end)
                summary = self._summary(end, started_wall, trio.current_time() - started)
                log.info("call.summary", **summary.log_fields())
                self._events.publish("call.ended", summary.log_fields())
        return summary

    async def _supervise(self, name: str, actor: Actor) -> None:
        """Run one actor; its end, or its crash, ends the call (never another call)."""
        structlog.contextvars.bind_contextvars(actor=name)
        ends: list[CallEnd | None] = []

        async def run() -> None:
            ends.append(await actor())

        def crashed(crash: Exception) -> None:
            log.exception("actor.crashed", error=describe(crash), exc_info=crash)
            reason = f"{name}: {leaf(crash)!r}"
            ends.append(CallEnd(EndReason.INTERNAL_ERROR, reason, CloseCode.INTERNAL_ERROR))

        await contain(run, crashed)
        if ends and ends[-1] is not None:
            self.end(ends[-1])

    async def _close_twilio(self, end: CallEnd) -> None:
        with trio.move_on_after(CLOSE_TIMEOUT_SECONDS, shield=True):
            await self._twilio.close(end.close_code, end.reason.value)

    def _wire(
        self, ai: SocketConnector, control: CallControl | None, operator: trio.MemoryReceiveChannel[str]
    ) -> None:
        settings = self._settings
        transcode = settings.ai.config.audio_format is AudioFormat.PCM24K
        caller = DropOldestChannel[CallerFrame]("caller_audio", settings.caller_audio_frames)
        caller_pcm = DropOldestChannel[CallerFrame]("caller_pcm", settings.caller_audio_frames)
        assistant = DropOldestChannel[AssistantAudio]("assistant_audio", settings.assistant_audio_pieces)
        assistant_ulaw = DropOldestChannel[AssistantAudio]("assistant_ulaw", settings.assistant_audio_pieces)
        barge_in_tx, barge_in_rx = trio.open_memory_channel[BargeIn](8)
        report_tx, report_rx = trio.open_memory_channel[PlayoutReport](64)
        mark_tx, mark_rx = trio.open_memory_channel[Mark](64)
        dtmf_tx, dtmf_rx = trio.open_memory_channel[Dtmf](16)
        keys_tx, keys_rx = trio.open_memory_channel[str](8)
        speech_tx, speech_rx = trio.open_memory_channel[float](4)
        speech = (
            (EnergyVAD(8000, settings.local_vad_threshold_db), speech_tx) if settings.local_barge_in else None
        )

        self.reader = TwilioReader(
            self._twilio, self._protocol, caller_audio=caller, marks=mark_tx, dtmf=dtmf_tx, speech=speech
        )
        self.keypad = Keypad(dtmf_rx, keys_tx, settings.dtmf_inter_digit_ms, events=self._events)
        self.ai = AISession(
            ai,
            settings.ai,
            caller_audio=caller_pcm if transcode else caller,
            assistant_audio=assistant,
            barge_ins=barge_in_tx,
            playout=report_rx,
            keypad=keys_rx,
            caller_speech=speech_rx if settings.local_barge_in else None,
            operator=operator,
            control=control,
            events=self._events,
        )
        self.writer = DownlinkWriter(
            self._twilio,
            self._protocol,
            assistant_audio=assistant_ulaw if transcode else assistant,
            barge_ins=barge_in_rx,
            marks=mark_rx,
            reports=report_tx,
            lead_ms=settings.playout_lead_ms,
            mark_interval_ms=settings.mark_interval_ms,
            events=self._events,
        )
        self._actors: dict[str, Actor] = {
            "twilio_reader": self.reader.run,
            "twilio_watchdog": self._watch_twilio,
            "keypad": self.keypad.run,
            "ai_session": self.ai.run,
            "downlink_writer": self.writer.run,
        }
        self.channels: list[DropOldestChannel[Any]] = [caller, assistant]
        if transcode:
            self._actors["codec_worker"] = CodecWorker(caller, caller_pcm, assistant, assistant_ulaw).run
            self.channels += [caller_pcm, assistant_ulaw]

    async def _watch_twilio(self) -> CallEnd:
        """Twilio sends media every 20 ms, silence included: a stream quiet for the limit is
        gone (a half-open connection the kernel has not noticed yet)."""
        limit = self._settings.twilio_silence_s
        socket = self._twilio
        # The socket's own clock when it has one: the reader may be busy, the socket is not.
        heard = (lambda: socket.last_received) if isinstance(socket, Liveness) else self._reader_heard
        quiet = await wait_for_silence(heard, limit)
        return CallEnd(
            EndReason.TWILIO_SILENT, f"nothing from Twilio for {quiet:.1f} s", CloseCode.GOING_AWAY
        )

    def _reader_heard(self) -> float:
        return self.reader.last_message_at

    def _summary(self, end: CallEnd, started_wall: float, duration: float) -> CallSummary:
        ai, writer = self.ai.stats, self.writer
        latencies = sorted(writer.clear_latencies)
        return CallSummary(
            call_sid=self.start.call_sid,
            stream_sid=self.start.stream_sid,
            account_sid=self.start.account_sid,
            started_at=started_wall,
            duration_s=duration,
            extras=self._summary_extras,
            end=end,
            audio_format=self._settings.ai.config.audio_format.value,
            frames_in=self.reader.frames_in,
            frames_out=writer.frames_out,
            drops={channel.name: channel.stats.dropped for channel in self.channels},
            peak_depths={channel.name: channel.stats.peak_depth for channel in self.channels},
            underruns=writer.underruns,
            barge_ins=ai.barge_ins,
            clears_sent=writer.clears_sent,
            clear_latency_ms_max=round(latencies[-1], 3) if latencies else None,
            truncations=ai.truncations,
            truncate_errors=ai.truncate_errors,
            stale_audio_discarded=writer.stale_discarded + ai.late_deltas_discarded,
            marks_sent=writer.marks_sent,
            marks_echoed=writer.marks_echoed,
            dtmf_digits=self.reader.dtmf_digits,
            dtmf_entries=self.keypad.entries,
            twilio_sequence_gaps=self._protocol.sequence_gaps,
            ai_sessions=ai.sessions,
            ai_reconnects=ai.reconnects,
            ai_appends_sent=ai.appends_sent,
            ai_deltas_received=ai.deltas_received,
            ai_responses=ai.responses,
            ai_errors=ai.errors,
            ai_tool_calls=ai.tool_calls,
            ai_usage=dict(ai.usage),
            uplink_latency_ms=self.ai.uplink_latency.summary(),
            downlink_latency_ms=writer.latency.summary(),
        )
