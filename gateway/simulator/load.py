"""Load mode of the Twilio simulator: many calls from one process, paced at real time.

Each call behaves as Twilio does: a signed voice webhook, the TwiML's stream opened with a
signed upgrade, `connected` and `start`, a `media` frame every 20 ms, the gateway's
messages checked as Twilio checks them, marks echoed when playback reaches them, `clear`
honoured, `stop` at the end. What differs from `caller.py` is the cost: one timer loop
sends every call's frame each 20 ms (not a task per call; the calls spread over ten 2 ms
slots, as real calls' frames are), messages are formatted from templates, and sockets are
`websockets`' sans-I/O protocol on trio. The generator reports its own CPU, so a
benchmark can tell when it, and not the gateway, is the limit.

A call's script: three identity frames (`load_audio`), silence until the greeting has
played, then turns of `speech_seconds` of speech followed by silence until the answer
has played, until `seconds` have passed. Callers behave like people (`Caller`): a share
of them (`interrupts`) speak over the answer, and a share (`hangups`) hang up early:
right after the greeting, mid-word, while the assistant is talking, or by dropping the
connection without a `stop` (Twilio losing the call). A stream the gateway closes
before the caller hung up counts as ended by the gateway. Send times of every frame,
receive times and sizes of every media message heard, and each `clear`'s arrival with
how much of the answer had played by then (what the caller really heard, the truth a
truncation is judged against) are kept on CLOCK_MONOTONIC for the latency figures.

The generator can call a server that sits behind a public URL it does not listen on
(`public_url`, as a gateway behind a TLS proxy is): webhooks and stream upgrades are
signed for the public URL, as Twilio signs them, and sent to `gateway_url`.
"""

from __future__ import annotations

import binascii
import random
import resource
import secrets
import time
from array import array
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import httpx2
import numpy as np
import trio

from actors.message_socket import ConnectFailed, SocketClosed
from gateway.net.websocket import LeanWebSocket
from gateway.net.ws_client import connect
from gateway.simulator.caller import SimulationError, parse_connect_stream
from gateway.simulator.load_audio import IDENTITY_FRAMES, SILENT_FRAME, SPEECH_FRAME, identity_frames
from gateway.simulator.outbound import OutboundClear, OutboundMark, OutboundMedia, Violation, check_outbound
from gateway.twilio.signature import compute_signature

TICK = 0.020
SLOTS = 10  # phases of the 20 ms period that calls are spread over
QUIET_AFTER_PLAYBACK = 0.3
BARGE_AFTER = 0.4  # how long into an answer an interrupting (or hanging-up) caller acts
CLOSE_WAIT = 5.0  # how long the gateway may take to close a stream after `stop`


def _b64(payload: bytes) -> str:
    return binascii.b2a_base64(payload, newline=False).decode("ascii")


_SPEECH = _b64(SPEECH_FRAME)
_SILENCE = _b64(SILENT_FRAME)


@dataclass(frozen=True)
class LoadPlan:
    gateway_url: str
    auth_token: str
    account_sid: str
    calls: int
    seconds: float  # each call's length
    ramp_seconds: float  # calls start evenly over this long
    speech_seconds: float = 1.5
    hangups: float = 0.0  # share of callers who hang up early (of every kind in turn)
    interrupts: float = 0.0  # share of callers who speak over the assistant
    seed: int = 1
    public_url: str = ""  # what Twilio signs and the TwiML names, when not gateway_url

    @property
    def signed_url(self) -> str:
        return (self.public_url or self.gateway_url).rstrip("/")

    def reachable(self, stream_url: str) -> str:
        """Where to open a stream the TwiML names: at gateway_url if it names the public URL."""
        public = _websocket_url(self.signed_url)
        if self.public_url and stream_url.startswith(public + "/"):
            return _websocket_url(self.gateway_url.rstrip("/")) + stream_url[len(public) :]
        return stream_url


def _websocket_url(url: str) -> str:
    return url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)


class Caller(Enum):
    """How a simulated caller behaves."""

    PATIENT = "patient"  # waits for each answer to end, hangs up when the call is over
    INTERRUPTS = "interrupts"  # speaks over every answer a moment after it starts
    AFTER_GREETING = "after_greeting"  # hangs up as soon as the greeting has played
    MID_WORD = "mid_word"  # hangs up halfway through their first sentence
    WHILE_TALKING = "while_talking"  # hangs up while the assistant is answering
    DROPS = "drops"  # the connection drops while the assistant talks: no stop, no close frame


HANG_UPS = (Caller.AFTER_GREETING, Caller.MID_WORD, Caller.WHILE_TALKING, Caller.DROPS)


def callers(plan: LoadPlan) -> list[Caller]:
    """Each call's caller, the shares of the plan spread over the calls in a shuffled order."""
    count = plan.calls
    hang_ups = round(count * plan.hangups)
    interrupts = min(count - hang_ups, round(count * plan.interrupts))
    kinds = [HANG_UPS[i % len(HANG_UPS)] for i in range(hang_ups)] + [Caller.INTERRUPTS] * interrupts
    kinds += [Caller.PATIENT] * (count - len(kinds))
    random.Random(plan.seed).shuffle(kinds)
    return kinds


class _Phase(Enum):
    GREETING = "greeting"
    SPEAKING = "speaking"
    LISTENING = "listening"
    DONE = "done"


@dataclass
class LoadCall:
    index: int
    call_sid: str
    caller: Caller = Caller.PATIENT
    stream_sid: str = ""
    socket: LeanWebSocket | None = None
    started: float = 0.0
    phase: _Phase = _Phase.GREETING
    spoken: int = 0
    sequence: int = 0
    frames: int = 0
    ended: float = 0.0  # when the caller hung up, or the stream closed
    sent: array[float] = field(default_factory=lambda: array("d"))  # send time of frame k
    heard: array[float] = field(default_factory=lambda: array("d"))  # arrival of media message m
    heard_bytes: array[int] = field(default_factory=lambda: array("l"))  # its audio bytes
    cleared: array[float] = field(default_factory=lambda: array("d"))  # arrival of each clear
    played_at_clear: array[float] = field(default_factory=lambda: array("d"))  # ms of the answer heard
    play_end: float = 0.0  # when everything queued at "Twilio" has played
    answer_bytes: int = 0  # audio received of the answer playing now (or last played)
    audio_heard: bool = False
    marks: deque[tuple[float, str]] = field(default_factory=deque)  # (due, name), in order
    marks_received: int = 0
    marks_echoed: int = 0
    clears: int = 0
    violations: list[str] = field(default_factory=list)
    close_code: int | None = None
    failure: str = ""
    completed: bool = False
    hung_up: bool = False  # the caller ended it early (stop sent, or dropped)
    declined: bool = False  # the voice webhook answered without a stream
    stop_sent: bool = False
    answer_heard_at: float = 0.0  # first frame of the answer being heard now


class LoadGenerator:
    def __init__(self, plan: LoadPlan) -> None:
        self.plan = plan
        self.calls = [
            LoadCall(index, "CA" + secrets.token_hex(16), caller)
            for index, caller in enumerate(callers(plan))
        ]
        self._live: list[LoadCall] = []
        self.cpu_seconds = 0.0
        self.wall_seconds = 0.0
        self.tick_lateness: array[float] = array("d")  # how late each tick ran

    async def run(self) -> None:
        cpu, wall = _cpu(), time.monotonic()
        async with httpx2.AsyncClient(timeout=30) as http, trio.open_nursery() as nursery:
            for call in self.calls:
                nursery.start_soon(self._call, http, call)
            await self._tick_until_done()
            nursery.cancel_scope.deadline = trio.current_time() + CLOSE_WAIT  # calls not closed by then
        self.cpu_seconds, self.wall_seconds = _cpu() - cpu, time.monotonic() - wall

    # ---- one call ---------------------------------------------------------------------

    async def _call(self, http: httpx2.AsyncClient, call: LoadCall) -> None:
        plan = self.plan
        await trio.sleep(plan.ramp_seconds * call.index / max(1, plan.calls))
        try:
            stream_url, parameters = await self._webhook(http, call)
            signature = compute_signature(plan.auth_token, stream_url)
            async with connect(plan.reachable(stream_url), [("X-Twilio-Signature", signature)]) as socket:
                call.socket = socket
                await self._start(call, parameters)
                await self._listen(call)
        except (SimulationError, ConnectFailed, SocketClosed) as exc:
            call.failure = call.failure or str(exc)
        finally:
            call.phase = _Phase.DONE
            call.ended = call.ended or time.monotonic()

    async def _webhook(self, http: httpx2.AsyncClient, call: LoadCall) -> tuple[str, dict[str, str]]:
        plan = self.plan
        url = plan.gateway_url.rstrip("/") + "/twilio/voice"
        signed = plan.signed_url + "/twilio/voice"
        form = {
            "CallSid": call.call_sid, "AccountSid": plan.account_sid, "From": "+15005550006",
            "To": "+15005550001", "CallStatus": "ringing", "Direction": "inbound", "ApiVersion": "2010-04-01",
        }  # fmt: skip
        signature = compute_signature(
            plan.auth_token, signed, {name: [value] for name, value in form.items()}
        )
        try:
            response = await http.post(url, data=form, headers={"X-Twilio-Signature": signature})
        except httpx2.HTTPError as exc:
            raise SimulationError(f"voice webhook unreachable: {exc!r}") from None
        if response.status_code != 200:
            raise SimulationError(f"voice webhook answered HTTP {response.status_code}")
        if "<Stream" not in response.text:
            call.declined = True  # a polite decline (draining, full): not a call the gateway cut
            raise SimulationError("the gateway declined the call")
        return parse_connect_stream(response.text)

    async def _start(self, call: LoadCall, parameters: dict[str, str]) -> None:
        assert call.socket is not None
        call.stream_sid = "MZ" + secrets.token_hex(16)
        await call.socket.send('{"event":"connected","protocol":"Call","version":"1.0.0"}')
        start = (
            '{"event":"start","sequenceNumber":"1","start":{"accountSid":"' + self.plan.account_sid
            + '","streamSid":"' + call.stream_sid + '","callSid":"' + call.call_sid
            + '","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,'
            + '"channels":1},"customParameters":{'
            + ",".join(f'"{name}":"{value}"' for name, value in parameters.items())
            + '}},"streamSid":"' + call.stream_sid + '"}'
        )  # fmt: skip
        call.sequence = 1
        await call.socket.send(start)
        call.started = time.monotonic()
        self._live.append(call)

    async def _listen(self, call: LoadCall) -> None:
        """Until the gateway closes the stream (after our `stop`, or on its own)."""
        assert call.socket is not None
        try:
            while True:
                self._on_message(call, await call.socket.receive(), time.monotonic())
        except SocketClosed as exc:
            call.close_code = exc.code
        finally:
            call.phase = _Phase.DONE

    def _on_message(self, call: LoadCall, message: str, now: float) -> None:
        outbound = check_outbound(message, call.stream_sid)
        if isinstance(outbound, Violation):
            call.violations.append(f"{outbound.code}: {outbound.reason}")
        elif isinstance(outbound, OutboundMedia):
            size = len(outbound.payload)
            call.heard.append(now)
            call.heard_bytes.append(size)
            if call.phase is _Phase.LISTENING and not call.answer_heard_at:
                call.answer_heard_at = now
            if call.play_end <= now:  # nothing was playing: a new answer begins
                call.answer_bytes = 0
            call.answer_bytes += size
            call.play_end = max(call.play_end, now) + size / 8000
            call.audio_heard = True
        elif isinstance(outbound, OutboundMark):
            call.marks_received += 1
            call.marks.append((max(call.play_end, now), outbound.name))
        elif isinstance(outbound, OutboundClear):
            call.clears += 1
            call.cleared.append(now)
            unplayed_ms = max(0.0, call.play_end - now) * 1000
            call.played_at_clear.append(call.answer_bytes / 8 - unplayed_ms)
            call.play_end = now
            call.marks = deque((now, name) for _, name in call.marks)

    # ---- the timer loop ---------------------------------------------------------------

    async def _tick_until_done(self) -> None:
        """Every 20 ms, each call's frame; calls spread over SLOTS phases, as real calls are.

        Twilio's calls start at random moments, so their frames arrive spread over the 20
        ms period, not in one burst of every call at once (which would measure queueing
        behind the burst, not the gateway)."""
        tick, slot = trio.current_time(), 0
        while any(call.phase is not _Phase.DONE for call in self.calls):
            tick += TICK / SLOTS
            slot = (slot + 1) % SLOTS
            await trio.sleep_until(tick)
            self.tick_lateness.append(trio.current_time() - tick)
            now = time.monotonic()
            for call in list(self._live):
                if call.index % SLOTS == slot:
                    await self._tick(call, now)
            if slot == 0:
                self._live = [call for call in self._live if call.phase is not _Phase.DONE]

    async def _tick(self, call: LoadCall, now: float) -> None:
        socket = call.socket
        if socket is None or call.phase is _Phase.DONE:
            return
        try:
            while call.marks and call.marks[0][0] <= now:
                await self._send(call, "mark", '{"name":"' + call.marks.popleft()[1] + '"}')
                call.marks_echoed += 1
            if self._advance(call, now):
                await self._hang_up(call)
                return
            await self._send_frame(call, now)
        except SocketClosed as exc:
            call.close_code = call.close_code or exc.code
            call.phase = _Phase.DONE

    def _advance(self, call: LoadCall, now: float) -> bool:
        """Move the call's script on; True when it is time to hang up."""
        plan = self.plan
        idle = call.audio_heard and now >= call.play_end + QUIET_AFTER_PLAYBACK and not call.marks
        if now - call.started >= plan.seconds:
            call.completed = True
            call.phase, call.ended = _Phase.DONE, now
            return True
        if self._hangs_up_now(call, now, idle):
            call.hung_up = True
            call.phase, call.ended = _Phase.DONE, now
            return True
        talking = call.answer_heard_at and now < call.play_end
        barges = call.caller is Caller.INTERRUPTS and talking and now - call.answer_heard_at > BARGE_AFTER
        if call.phase is _Phase.GREETING and idle:
            call.phase, call.spoken = _Phase.SPEAKING, 0
        elif call.phase is _Phase.SPEAKING and call.spoken * TICK >= plan.speech_seconds:
            call.phase, call.audio_heard, call.answer_heard_at = _Phase.LISTENING, False, 0.0
        elif call.phase is _Phase.LISTENING and (idle or barges):
            call.phase, call.spoken = _Phase.SPEAKING, 0
        return False

    def _hangs_up_now(self, call: LoadCall, now: float, idle: bool) -> bool:
        caller = call.caller
        if caller is Caller.AFTER_GREETING:
            return call.phase is _Phase.GREETING and idle
        if caller is Caller.MID_WORD:
            return call.phase is _Phase.SPEAKING and call.spoken * TICK >= self.plan.speech_seconds / 2
        if caller in (Caller.WHILE_TALKING, Caller.DROPS):
            talking = call.answer_heard_at and now < call.play_end
            return bool(talking) and now - call.answer_heard_at > BARGE_AFTER
        return False

    async def _send_frame(self, call: LoadCall, now: float) -> None:
        k = call.frames
        if k < IDENTITY_FRAMES:
            payload = _b64(identity_frames(call.index)[k])
        elif call.phase is _Phase.SPEAKING:
            payload = _SPEECH
            call.spoken += 1
        else:
            payload = _SILENCE
        body = '{"track":"inbound","chunk":"' + str(k + 1) + '","timestamp":"' + str(k * 20)
        call.sent.append(now)
        call.frames += 1
        await self._send(call, "media", body + '","payload":"' + payload + '"}')

    async def _hang_up(self, call: LoadCall) -> None:
        if call.caller is Caller.DROPS and call.hung_up:
            assert call.socket is not None
            await call.socket.abort()  # the connection is simply gone
            return
        body = '{"accountSid":"' + self.plan.account_sid + '","callSid":"' + call.call_sid + '"}'
        call.stop_sent = True
        await self._send(call, "stop", body)

    async def _send(self, call: LoadCall, event: str, body: str) -> None:
        assert call.socket is not None
        call.sequence += 1
        await call.socket.send(
            '{"event":"' + event + '","sequenceNumber":"' + str(call.sequence) + '","' + event + '":'
            + body + ',"streamSid":"' + call.stream_sid + '"}'
        )  # fmt: skip

    # ---- results ----------------------------------------------------------------------

    def dump(self, path: Path) -> None:
        arrays: dict[str, Any] = {"calls": np.array(len(self.calls))}
        for call in self.calls:
            arrays[f"c{call.index}_sent"] = np.frombuffer(call.sent, dtype=np.float64)
            arrays[f"c{call.index}_heard"] = np.frombuffer(call.heard, dtype=np.float64)
            arrays[f"c{call.index}_heard_bytes"] = np.array(call.heard_bytes, dtype=np.int64)
            arrays[f"c{call.index}_cleared"] = np.frombuffer(call.cleared, dtype=np.float64)
            arrays[f"c{call.index}_played_at_clear"] = np.frombuffer(call.played_at_clear, dtype=np.float64)
        arrays["tick_lateness"] = np.frombuffer(self.tick_lateness, dtype=np.float64)
        np.savez(path, **arrays)

    def summary(self) -> dict[str, object]:
        calls = self.calls
        lateness = np.frombuffer(self.tick_lateness, dtype=np.float64) * 1000
        return {
            "calls": len(calls),
            "completed": sum(_ended_well(call) for call in calls),
            "hung_up_early": sum(call.hung_up for call in calls),
            "ended_by_gateway": sum(_ended_by_gateway(call) for call in calls),
            "declined": sum(call.declined for call in calls),
            "callers": {kind.value: sum(call.caller is kind for call in calls) for kind in Caller},
            "failed": {call.call_sid: call.failure for call in calls if call.failure},
            "violations": sum(len(call.violations) for call in calls),
            "violation_examples": [v for call in calls for v in call.violations][:5],
            "frames_sent": sum(call.frames for call in calls),
            "media_heard": sum(len(call.heard) for call in calls),
            "marks_received": sum(call.marks_received for call in calls),
            "marks_echoed": sum(call.marks_echoed for call in calls),
            "clears": sum(call.clears for call in calls),
            "call_seconds": round(sum(call.ended - call.started for call in calls if call.started), 3),
            "close_codes": sorted({call.close_code for call in calls if call.close_code is not None}),
            "cpu_seconds": round(self.cpu_seconds, 3),
            "wall_seconds": round(self.wall_seconds, 3),
            "cpu_share": round(self.cpu_seconds / self.wall_seconds, 3) if self.wall_seconds else None,
            "tick_lateness_ms_p99": round(float(np.percentile(lateness, 99)), 3) if len(lateness) else None,
        }


def _ended_well(call: LoadCall) -> bool:
    """Ran its script (to the end, or to its caller's early hang-up) and closed cleanly."""
    if call.caller is Caller.DROPS and call.hung_up:
        return not call.failure
    return (call.completed or call.hung_up) and call.close_code == 1000 and not call.failure


def _ended_by_gateway(call: LoadCall) -> bool:
    """The stream closed, or never came up, before the caller ended the call (a polite
    decline at the webhook aside: that is admission, not a cut call)."""
    return not (call.stop_sent or call.declined or (call.caller is Caller.DROPS and call.hung_up))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
