"""Fakes for tests on the virtual clock: a Twilio that plays and echoes, an AI that is scripted."""

from __future__ import annotations

import base64
import json

import orjson
import trio

from gateway.simulator.outbound import OutboundClear, OutboundMark, OutboundMedia, Violation, check_outbound
from gateway.simulator.playback import TwilioPlayback
from tests.memory_socket import MemorySocket

STREAM = "MZ" + "a" * 32
CALL = "CA" + "b" * 32
ACCOUNT = "AC" + "c" * 32


class FakeTwilio:
    """Twilio's side of a media stream: plays what it gets in real (virtual) time, echoes marks.

    `media_times` records when each media message arrived (trio clock) and `media_sizes`
    its audio bytes, `clear_times` when each clear did; `heard` is the caller's ear, one
    mu-law byte per 1/8 ms.
    """

    def __init__(self, socket: MemorySocket) -> None:
        self.socket = socket
        self.playback = TwilioPlayback()
        self.media_times: list[float] = []
        self.media_sizes: list[int] = []
        self.clear_times: list[float] = []
        self.marks: list[str] = []
        self.violations: list[Violation] = []
        self._sequence = 1
        self._started = trio.current_time()

    def now_ms(self) -> float:
        return (trio.current_time() - self._started) * 1000

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._play)
            try:
                while True:
                    await self._on_message(await self.socket.receive())
            except Exception:
                nursery.cancel_scope.cancel()

    async def _play(self) -> None:
        while True:
            await self._echo(self.playback.advance(self.now_ms()))
            await trio.sleep(0.005)

    async def _on_message(self, message: str) -> None:
        outbound = check_outbound(message, STREAM)
        now = self.now_ms()
        if isinstance(outbound, Violation):
            self.violations.append(outbound)
        elif isinstance(outbound, OutboundMedia):
            self.media_times.append(trio.current_time())
            self.media_sizes.append(len(outbound.payload))
            await self._echo(self.playback.enqueue_audio(now, outbound.payload))
        elif isinstance(outbound, OutboundMark):
            self.marks.append(outbound.name)
            await self._echo(self.playback.enqueue_mark(now, outbound.name))
        elif isinstance(outbound, OutboundClear):
            self.clear_times.append(trio.current_time())
            await self._echo(self.playback.clear(now))

    async def _echo(self, names: list[str]) -> None:
        for name in names:
            await self.send("mark", {"name": name})

    async def send(self, event: str, body: dict) -> None:
        self._sequence += 1
        message = {"event": event, "sequenceNumber": str(self._sequence), event: body, "streamSid": STREAM}
        await self.socket.send(json.dumps(message))

    async def say(self, payload: bytes) -> None:
        await self.send(
            "media",
            {
                "track": "inbound",
                "chunk": "1",
                "timestamp": "0",
                "payload": base64.b64encode(payload).decode(),
            },
        )

    async def press(self, digit: str) -> None:
        await self.send("dtmf", {"track": "inbound_track", "digit": digit})

    async def stop(self) -> None:
        await self.send("stop", {"accountSid": ACCOUNT, "callSid": CALL})


class ScriptedAI:
    """The provider's side of one AI socket, driven by the test."""

    def __init__(self, socket: MemorySocket) -> None:
        self.socket = socket
        self.received: list[dict] = []

    async def send(self, type_: str, **fields) -> None:
        await self.socket.send(json.dumps({"type": type_, **fields}))

    async def next(self, type_: str) -> dict:
        """Client events until one of `type_` (all of them are kept in `received`)."""
        while True:
            event = orjson.loads(await self.socket.receive())
            self.received.append(event)
            if event["type"] == type_:
                return event

    def sent(self, type_: str) -> list[dict]:
        return [event for event in self.received if event["type"] == type_]

    async def drain(self) -> None:
        """Read whatever the client has sent so far."""
        while True:
            try:
                with trio.move_on_after(0.001):
                    self.received.append(orjson.loads(await self.socket.receive()))
                    continue
            except Exception:
                return
            return

    async def speak(
        self, response: str, item: str, audio: bytes, *, done: bool = True, chunk: int = 800
    ) -> None:
        """A response item of `audio`, streamed in chunks (as fast as the socket takes it)."""
        await self.send("response.created", response={"id": response, "status": "in_progress"})
        for offset in range(0, len(audio), chunk):
            await self.send(
                "response.output_audio.delta",
                response_id=response,
                item_id=item,
                output_index=0,
                content_index=0,
                delta=base64.b64encode(audio[offset : offset + chunk]).decode(),
            )
        if done:
            await self.send("response.output_audio.done", response_id=response, item_id=item)

    async def done(
        self, response: str, status: str = "completed", reason: str | None = None, output: list | None = None
    ) -> None:
        details = {"type": status, "reason": reason} if reason else None
        await self.send(
            "response.done",
            response={"id": response, "status": status, "status_details": details, "output": output or []},
        )

    async def call_tool(self, response: str, name: str, arguments: str, call_id: str = "call_1") -> None:
        item = {
            "id": "item_fc",
            "type": "function_call",
            "call_id": call_id,
            "name": name,
            "arguments": arguments,
            "status": "completed",
        }
        await self.send("response.output_item.done", response_id=response, output_index=1, item=item)
