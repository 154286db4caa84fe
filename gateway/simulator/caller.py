"""A simulated Twilio call against a running gateway, over real HTTP and WebSocket.

It behaves as Twilio does for one inbound call: a signed voice webhook, the TwiML
answer parsed for `<Connect><Stream>` and its parameters, the stream opened with a
signed upgrade, `connected` and `start`, then caller audio as 20 ms `media` frames at
real-time pace, `dtmf` on request, and `stop` to hang up. What the gateway sends back
is checked like Twilio checks it and played through a model of Twilio's buffer, which
echoes marks and honours `clear`; the caller's ear is recorded.

The default script: wait for the greeting to finish, say the caller phrase, wait for
the answer (the local agent plays the phrase back), hang up.
"""

from __future__ import annotations

import binascii
import math
import secrets
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np
import orjson
import trio
import trio_websocket

from actors import g711
from actors.g711 import ULAW_SILENCE
from gateway.simulator.outbound import (
    OutboundClear,
    OutboundMark,
    OutboundMedia,
    Violation,
    check_outbound,
)
from gateway.simulator.playback import TwilioPlayback
from gateway.simulator.twiml_client import (
    CallParty,
    ConnectStream,
    SimulationError,
    follow_action,
    parse_connect_stream,
    voice_webhook,
)
from gateway.twilio.signature import compute_signature

__all__ = ["CallReport", "CallScript", "SimulationError", "parse_connect_stream", "simulate_call"]

FRAME_MS = 20
FRAME_BYTES = 160
SILENT_FRAME = bytes([ULAW_SILENCE]) * FRAME_BYTES


@dataclass(frozen=True)
class CallScript:
    utterance: bytes  # what the caller says once the greeting is over (mu-law 8 kHz)
    dtmf: tuple[tuple[float, str], ...] = ()  # (seconds after start, key)
    interrupt_after_ms: float | None = None  # speak over the greeting once this much of it was heard
    stream_delay_ms: float = 0.0  # Twilio's delay from answering the webhook to opening the stream
    max_seconds: float = 40.0
    greeting_timeout_s: float = 12.0  # speak anyway if no greeting has finished by then
    quiet_after_greeting_ms: float = 600.0
    quiet_after_answer_ms: float = 1000.0


@dataclass
class CallReport:
    call_sid: str
    stream_sid: str = ""
    stream_url: str = ""
    completed: bool = False
    duration_s: float = 0.0
    frames_sent: int = 0
    media_received: int = 0  # media messages
    frames_received: int = 0  # the 20 ms frames in them (a part frame counts as one)
    marks_received: int = 0
    mark_echoes_sent: int = 0
    clears_received: int = 0
    greeting_ms: float = 0.0  # audio heard before the caller spoke
    answer_ms: float = 0.0  # audio heard after the caller finished speaking
    answer_latency_ms: float | None = None  # end of the caller's speech -> first answer byte heard
    first_audio_ms: float | None = None  # webhook answered -> first assistant audio heard
    cleared_ms: float = 0.0
    speech_started_ms: float | None = None  # when the caller's first loud frame was sent
    assistant_stopped_ms: float | None = None  # when assistant audio stopped playing after that
    heard_before_clear_ms: float | None = None  # assistant audio played when the first clear came
    violations: list[Violation] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""
    moves: int = 0  # streams the gateway closed for the call to go on in a new one
    move_gaps_ms: list[float] = field(default_factory=list)  # stream closed -> next one started
    heard: bytes = b""

    @property
    def ended_cleanly(self) -> bool:
        """The script ran to its end, or the gateway ended the call normally (the AI hung up)."""
        return not self.violations and (self.completed or self.close_code == 1000)

    def as_dict(self) -> dict[str, Any]:
        data = {key: value for key, value in vars(self).items() if key not in {"heard", "violations"}}
        data["violations"] = [f"{v.code}: {v.reason}" for v in self.violations]
        return data


class _Phase(Enum):
    GREETING = "greeting"
    SPEAKING = "speaking"
    AWAITING_ANSWER = "awaiting_answer"
    DONE = "done"


async def simulate_call(
    gateway_url: str,
    auth_token: str,
    account_sid: str,
    script: CallScript,
    *,
    caller: str = "+15005550006",
    called: str = "+15005550001",
    call_sid: str | None = None,
    direction: str = "inbound",
    action_base: str | None = None,
) -> CallReport:
    """Place one simulated call; raise `SimulationError` if it cannot be set up.

    An outbound call placed by the gateway is played by passing the CallSid Twilio gave it
    and `direction="outbound-api"`: Twilio then fetches the voice webhook once answered.
    When the gateway closes a stream (1000) of a call the script has not finished and the
    TwiML had `<Connect action>`, the call follows it as Twilio does: the action URL is
    requested (at `action_base` instead of its own origin when given: the instance a load
    balancer would pick) and the call goes on in the stream it answers with.
    """
    report = CallReport(call_sid=call_sid or "CA" + secrets.token_hex(16))
    party = CallParty(report.call_sid, account_sid, caller, called, direction)
    first = await voice_webhook(gateway_url, auth_token, party)
    report.stream_url = first.url
    connect: ConnectStream | None = first
    answered = trio.current_time()
    await trio.sleep(script.stream_delay_ms / 1000)
    stream: _Stream | None = None
    while connect is not None:
        stream = await _run_leg(
            stream, connect, auth_token, report=report, account_sid=account_sid, script=script
        )
        if not stream.moved() or connect.action is None:
            break
        stream.closed_at = trio.current_time()
        connect = await follow_action(_at(connect.action, action_base), auth_token, party)
    if stream is not None and not stream.ended:
        await stream.end()  # closed for a move that did not happen: Twilio hung up
    if stream is not None and stream.first_audio is not None:
        report.first_audio_ms = (stream.first_audio - answered) * 1000
    return report


async def _run_leg(
    stream: _Stream | None,
    connect: ConnectStream,
    auth_token: str,
    *,
    report: CallReport,
    account_sid: str,
    script: CallScript,
) -> _Stream:
    """One media stream of the call: opened, played until it ends, and, unless the gateway
    closed it for a move, the call hung up."""
    signature = compute_signature(auth_token, connect.url)
    try:
        async with trio_websocket.open_websocket_url(
            connect.url, extra_headers=[(b"X-Twilio-Signature", signature.encode())], connect_timeout=10
        ) as connection:
            if stream is None:
                stream = _Stream(
                    connection, report=report, account_sid=account_sid, parameters=connect.parameters,
                    script=script,
                )  # fmt: skip
            else:
                stream.switch(connection, connect.parameters)
            await stream.run()
            if not (stream.moved() and connect.action):
                await stream.end()
    except trio_websocket.ConnectionRejected as exc:
        raise SimulationError(f"stream upgrade refused with HTTP {exc.status_code}: {exc.body!r}") from None
    except trio_websocket.HandshakeError as exc:
        raise SimulationError(f"cannot open the stream at {connect.url}: {exc!r}") from None
    return stream


def _at(url: str, base: str | None) -> str:
    """`url` with its scheme and host replaced by `base`'s."""
    if base is None:
        return url
    path = url.split("://", 1)[1].partition("/")[2]
    return base.rstrip("/") + "/" + path


class _Stream:
    """The media stream of one call, as Twilio runs it."""

    def __init__(
        self,
        connection: trio_websocket.WebSocketConnection,
        *,
        report: CallReport,
        account_sid: str,
        parameters: dict[str, str],
        script: CallScript,
    ) -> None:
        self._ws = connection
        self._report = report
        self._account_sid = account_sid
        self._parameters = parameters
        self._script = script
        self._playback = TwilioPlayback()
        self._sequence = 0
        self._phase = _Phase.GREETING
        self._utterance_at = 0
        self._spoke_until_ms = 0.0
        self._started = 0.0
        self.first_audio: float | None = None  # trio clock time the first assistant byte played
        self.ended = False
        self.closed_at: float | None = None  # when the gateway closed the last stream for a move
        self._queue_changed = trio.Event()
        report.stream_sid = "MZ" + secrets.token_hex(16)

    def _now_ms(self) -> float:
        return (trio.current_time() - self._started) * 1000

    async def run(self) -> None:
        """One stream of the call, until it ends (the script's end, or the gateway's close)."""
        self._started = self._started or trio.current_time()
        await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self._send_event(
            "start",
            {
                "accountSid": self._account_sid,
                "streamSid": self._report.stream_sid,
                "callSid": self._report.call_sid,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": self._parameters,
            },
        )
        if self.closed_at is not None:  # the caller's gap: the old stream closed -> this one started
            self._report.move_gaps_ms.append((trio.current_time() - self.closed_at) * 1000)
            self.closed_at = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._listen, nursery.cancel_scope)
            nursery.start_soon(self._echo_on_time)
            await self._talk()
            nursery.cancel_scope.cancel()

    def moved(self) -> bool:
        """The gateway closed the stream normally while the caller was still on the line."""
        return self._report.close_code == 1000 and self._phase is not _Phase.DONE

    def switch(self, connection: trio_websocket.WebSocketConnection, parameters: dict[str, str]) -> None:
        """Carry on in a new stream: Twilio's buffer of the old one is gone with it."""
        self._ws, self._parameters, self._sequence = connection, parameters, 0
        self._playback.clear(self._now_ms())
        report = self._report
        report.stream_sid, report.close_code, report.close_reason = "MZ" + secrets.token_hex(16), None, ""
        report.moves += 1

    async def end(self) -> None:
        """Hang up (unless the gateway ended the call) and settle the report."""
        self.ended = True
        await self._hang_up()
        self._finish()

    # ---- caller side -----------------------------------------------------------------

    async def _talk(self) -> None:
        dtmf = sorted(self._script.dtmf)
        tick = trio.current_time()
        frame = 0
        try:
            while self._phase is not _Phase.DONE:
                now_ms = self._now_ms()
                await self._echo_marks(self._playback.advance(now_ms))
                self._next_phase(now_ms)
                while dtmf and dtmf[0][0] * 1000 <= now_ms:
                    await self._send_event("dtmf", {"track": "inbound_track", "digit": dtmf.pop(0)[1]})
                await self._send_media(frame)
                frame += 1
                tick += FRAME_MS / 1000
                await trio.sleep_until(tick)
        except trio_websocket.ConnectionClosed:
            return  # the gateway ended the call; _listen records how

    def _next_phase(self, now_ms: float) -> None:
        playback, script = self._playback, self._script
        idle_ms = now_ms - playback.last_audio_ms if playback.queued_ms == 0 else 0.0
        if now_ms >= script.max_seconds * 1000:
            self._phase = _Phase.DONE
        elif self._phase is _Phase.GREETING:
            greeted = playback.audio_bytes_played > 0 and idle_ms >= script.quiet_after_greeting_ms
            interrupt = script.interrupt_after_ms is not None and (
                playback.audio_bytes_played / 8 >= script.interrupt_after_ms
            )
            if greeted or interrupt or now_ms >= script.greeting_timeout_s * 1000:
                self._report.greeting_ms = playback.audio_bytes_played / 8
                self._phase = _Phase.SPEAKING
        elif self._phase is _Phase.SPEAKING and self._utterance_at >= len(script.utterance):
            self._spoke_until_ms = now_ms
            self._phase = _Phase.AWAITING_ANSWER
        elif self._phase is _Phase.AWAITING_ANSWER:
            answered = playback.last_audio_ms > self._spoke_until_ms
            if answered and self._report.answer_latency_ms is None:
                # An answer already playing when the caller finished (they spoke over it) is 0 ms late.
                starts = [t for t in playback.audio_starts_ms if t >= self._spoke_until_ms]
                self._report.answer_latency_ms = starts[0] - self._spoke_until_ms if starts else 0.0
            if answered and idle_ms >= script.quiet_after_answer_ms:
                self._report.completed = True
                self._phase = _Phase.DONE

    async def _send_media(self, frame: int) -> None:
        payload = SILENT_FRAME
        if self._phase is _Phase.SPEAKING:
            chunk = self._script.utterance[self._utterance_at : self._utterance_at + FRAME_BYTES]
            self._utterance_at += FRAME_BYTES
            payload = chunk + SILENT_FRAME[len(chunk) :]
            if self._report.speech_started_ms is None and _loud(payload):
                self._report.speech_started_ms = self._now_ms()
        await self._send_event(
            "media",
            {
                "track": "inbound",
                "chunk": str(frame + 1),
                "timestamp": str(frame * FRAME_MS),
                "payload": _b64(payload),
            },
        )
        self._report.frames_sent += 1

    async def _echo_on_time(self) -> None:
        """Echo each mark the moment playback reaches it, as Twilio does (not on the next tick)."""
        while True:
            due = self._playback.next_mark_ms()
            with trio.move_on_at(math.inf if due is None else self._started + due / 1000):
                await self._queue_changed.wait()
                continue
            await self._echo_marks(self._playback.advance(self._now_ms()))

    async def _echo_marks(self, names: list[str]) -> None:
        for name in names:
            await self._send_event("mark", {"name": name})
            self._report.mark_echoes_sent += 1

    async def _hang_up(self) -> None:
        if self._report.close_code is not None:
            return  # the gateway ended the call first
        try:
            await self._send_event(
                "stop", {"accountSid": self._account_sid, "callSid": self._report.call_sid}
            )
            with trio.move_on_after(3):
                while True:  # the gateway answers stop by closing the stream
                    await self._ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            self._record_close(exc)

    # ---- gateway side ----------------------------------------------------------------

    async def _listen(self, cancel_scope: trio.CancelScope) -> None:
        try:
            while True:
                await self._on_message(await self._ws.get_message())
        except trio_websocket.ConnectionClosed as exc:
            self._record_close(exc)
            cancel_scope.cancel()

    async def _on_message(self, message: str | bytes) -> None:
        now_ms = self._now_ms()
        outbound = check_outbound(message, self._report.stream_sid)
        if isinstance(outbound, Violation):
            self._report.violations.append(outbound)
        elif isinstance(outbound, OutboundMedia):
            self._report.media_received += 1
            self._report.frames_received += -(-len(outbound.payload) // 160)
            await self._echo_marks(self._playback.enqueue_audio(now_ms, outbound.payload))
        elif isinstance(outbound, OutboundMark):
            self._report.marks_received += 1
            await self._echo_marks(self._playback.enqueue_mark(now_ms, outbound.name))
            self._wake_echoes()
        elif isinstance(outbound, OutboundClear):
            self._report.clears_received += 1
            await self._echo_marks(self._playback.clear(now_ms))
            self._wake_echoes()
            if self._report.speech_started_ms is not None and self._report.heard_before_clear_ms is None:
                self._report.heard_before_clear_ms = self._playback.audio_bytes_played / 8

    def _wake_echoes(self) -> None:
        self._queue_changed.set()
        self._queue_changed = trio.Event()

    def _record_close(self, exc: trio_websocket.ConnectionClosed) -> None:
        if exc.reason is not None and self._report.close_code is None:
            self._report.close_code = exc.reason.code
            self._report.close_reason = exc.reason.reason or ""

    # ---- wire ------------------------------------------------------------------------

    async def _send_event(self, event: str, body: dict[str, Any]) -> None:
        self._sequence += 1
        await self._send(
            {
                "event": event,
                "sequenceNumber": str(self._sequence),
                event: body,
                "streamSid": self._report.stream_sid,
            }
        )

    async def _send(self, message: dict[str, Any]) -> None:
        try:
            await self._ws.send_message(orjson.dumps(message).decode())
        except trio_websocket.ConnectionClosed as exc:
            self._record_close(exc)
            raise

    def _finish(self) -> None:
        report, playback = self._report, self._playback
        playback.advance(self._now_ms())
        report.duration_s = self._now_ms() / 1000
        report.heard = bytes(playback.heard)
        report.cleared_ms = playback.bytes_cleared / 8
        report.answer_ms = max(0.0, playback.audio_bytes_played / 8 - report.greeting_ms)
        if playback.audio_starts_ms:
            self.first_audio = self._started + playback.audio_starts_ms[0] / 1000
        if report.speech_started_ms is not None:
            stops = [t for t in playback.audio_stops_ms if t >= report.speech_started_ms]
            report.assistant_stopped_ms = stops[0] if stops else None


def _loud(frame: bytes) -> bool:
    """Above -40 dBFS, the level at which VADs (the local agent's included) hear speech."""
    level = float(np.sqrt(np.mean(g711.decode(frame).astype(np.float64) ** 2)))
    return level > 32768 * 10 ** (-40 / 20)


def _b64(payload: bytes) -> str:
    return binascii.b2a_base64(payload, newline=False).decode("ascii")
