"""A call is a barrier: whatever its actors raise, it ends that call and nothing else.

Trio nurseries raise exception groups that can mix a real error with `Cancelled` (the
call's scope being cancelled at the same moment); such a group is not an `Exception`,
and an `except Exception` lets it escape into the nursery other calls live in.
"""

import json
from contextlib import asynccontextmanager

import trio

from actors.errors import CloseCode
from actors.messages import CallEnd, EndReason
from actors.supervisor import CallSupervisor
from actors.twilio_media import TwilioMediaProtocol
from tests.memory_socket import MemoryConnector, socket_pair
from tests.unit.test_supervisor import delta, event, settings
from tests.unit.test_twilio_media import STREAM, media, start, stop


class HangUpDuringSend:
    """The gateway end of a Twilio socket on which the caller hangs up while a frame is
    being sent: the reader parses `stop` and the call starts ending between the writer's
    frame and its mark, the race seen under load."""

    def __init__(self, inner, protocol: TwilioMediaProtocol) -> None:
        self._inner = inner
        self._protocol = protocol
        self.supervisor: CallSupervisor | None = None
        self.frames = 0
        self.hung_up = False

    async def receive(self) -> str:
        return await self._inner.receive()

    async def send(self, message: str) -> None:
        await self._inner.send(message)
        self.frames += '"event":"media"' in message
        if self.frames == 2 and not self.hung_up:  # the first frame also reported PlayoutBusy
            self.hung_up = True
            self._protocol.receive(stop(5))  # what the reader would do with the caller's stop
            assert self.supervisor is not None
            self.supervisor.end(CallEnd(EndReason.TWILIO_STOP))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._inner.close(code, reason)


async def test_a_send_after_stop_while_the_call_is_cancelled_ends_the_call_normally(autojump_clock):
    """The writer's next send after `stop` raises LocalProtocolError while its siblings see
    Cancelled: the call still ends as twilio_stop, with its summary, and run() returns."""
    gateway_end, twilio_end = socket_pair()
    protocol = TwilioMediaProtocol()
    started = protocol.receive(start())
    socket = HangUpDuringSend(gateway_end, protocol)
    connector = MemoryConnector()
    call_settings = settings()
    call_settings = type(call_settings)(ai=call_settings.ai, mark_interval_ms=20.0, twilio_silence_s=3600)
    supervisor = CallSupervisor(started, socket, protocol, connector, call_settings)
    socket.supervisor = supervisor
    summaries = []

    async def run() -> None:
        summaries.append(await supervisor.run())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        ai = await connector.server_ends.receive()
        await ai.receive()  # session.update
        await ai.receive()  # response.create
        await ai.send(event("response.created", response={"id": "r1", "status": "in_progress"}))
        await ai.send(delta("r1", "i1", b"\x7f" * 800))
    assert socket.hung_up
    [summary] = summaries
    assert summary.end.reason is EndReason.TWILIO_STOP
    assert twilio_end.peer.close_code == CloseCode.NORMAL


class CrashingReader:
    """A Twilio socket whose reader crashes with a bug of ours mid-call."""

    def __init__(self, inner) -> None:
        self._inner = inner

    async def receive(self) -> str:
        await trio.sleep(0.5)
        raise KeyError("a bug in our own code")

    async def send(self, message: str) -> None:
        await self._inner.send(message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._inner.close(code, reason)


async def test_an_actor_that_crashes_ends_its_call_as_internal_error_and_no_other(autojump_clock):
    """One call's crashing actor ends it with 1011 and a summary; a neighbour call runs on."""
    calls = []
    for crashing in (True, False):
        gateway_end, twilio_end = socket_pair()
        protocol = TwilioMediaProtocol()
        started = protocol.receive(start())
        socket = CrashingReader(gateway_end) if crashing else gateway_end
        calls.append((CallSupervisor(started, socket, protocol, MemoryConnector(), settings()), twilio_end))
    summaries: dict[int, object] = {}

    async def run(index: int) -> None:
        summaries[index] = await calls[index][0].run()

    async with trio.open_nursery() as nursery:
        for index in range(2):
            nursery.start_soon(run, index)
        await trio.sleep(2)
        assert list(summaries) == [0]  # the crashed call is over, its neighbour is not
        calls[1][0].end(CallEnd(EndReason.SHUTDOWN))
    assert summaries[0].end.reason is EndReason.INTERNAL_ERROR
    assert calls[0][1].peer.close_code == CloseCode.INTERNAL_ERROR
    assert summaries[1].end.reason is EndReason.SHUTDOWN


class StallingAI:
    """The gateway's end of an AI socket whose sends hang for ever once `stalled` is set:
    a provider that stopped reading (its TCP window full), while it still sends."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.stalled = False
        self.stuck: list[str] = []

    async def receive(self) -> str:
        return await self._inner.receive()

    async def send(self, message: str) -> None:
        if self.stalled:
            self.stuck.append(message)
            await trio.sleep_forever()
        await self._inner.send(message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._inner.close(code, reason)


class StallingConnector(MemoryConnector):
    def __init__(self) -> None:
        super().__init__()
        self.sockets: list[StallingAI] = []

    @asynccontextmanager
    async def connect(self):
        async with super().connect() as socket:
            stalling = StallingAI(socket)
            self.sockets.append(stalling)
            yield stalling


def mark_echo(name: str) -> str:
    return json.dumps({"event": "mark", "sequenceNumber": "9", "streamSid": STREAM, "mark": {"name": name}})


async def test_an_ai_socket_that_stops_reading_never_stops_the_twilio_reader(autojump_clock):
    """With every send to the AI stuck, the caller's side goes on: Twilio's frames and mark
    echoes are still read (nothing backs up from the AI, through playout reports and
    marks, into the reader), so Twilio's socket never stalls."""
    gateway_end, twilio_end = socket_pair(buffer=64)
    protocol = TwilioMediaProtocol()
    started = protocol.receive(start())
    connector = StallingConnector()
    supervisor = CallSupervisor(started, gateway_end, protocol, connector, settings(greet_first=False))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(supervisor.run)
        ai = await connector.server_ends.receive()
        await ai.receive()  # session.update
        await ai.send(event("response.created", response={"id": "r1", "status": "in_progress"}))
        await ai.send(delta("r1", "i1", b"\x7f" * 1600))
        await trio.sleep(0.1)
        connector.sockets[0].stalled = True
        await ai.send(event("input_audio_buffer.speech_started", item_id="u1", audio_start_ms=0))
        for number in range(2, 502):  # 500 short items, each with its item-end mark
            response, item = f"r{number}", f"i{number}"
            await ai.send(event("response.created", response={"id": response, "status": "in_progress"}))
            await ai.send(delta(response, item, b"\x7f" * 160))
            await ai.send(event("response.output_audio.done", response_id=response, item_id=item))
        with trio.fail_after(60):
            echoed = 0
            while echoed < 450:
                message = json.loads(await twilio_end.receive())
                if message["event"] == "mark":
                    await twilio_end.send(mark_echo(message["mark"]["name"]))
                    echoed += 1
                await twilio_end.send(media(10 + echoed))
        assert supervisor.reader.frames_in >= 450
        supervisor.end(CallEnd(EndReason.SHUTDOWN))
