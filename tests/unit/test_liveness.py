"""Liveness on the virtual clock: a silent provider is replaced, a silent Twilio ends the call,
and a watchdog that wakes up late (a saturated loop) cuts nothing."""

import dataclasses
from contextlib import asynccontextmanager

import structlog
import trio

from actors.errors import CloseCode
from actors.messages import EndReason
from actors.watchdog import wait_for_silence
from tests.memory_socket import MemoryConnector
from tests.unit.test_turn_taking import call, settings


class HalfOpen:
    """The gateway end of an AI socket whose peer is gone without a close: sends vanish,
    nothing arrives, pings go unanswered."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.last_received = trio.current_time()
        self.pings = 0

    async def receive(self) -> str:
        await trio.sleep_forever()

    async def send(self, message: str) -> None:
        await trio.lowlevel.checkpoint()

    async def ping(self) -> None:
        self.pings += 1
        await trio.lowlevel.checkpoint()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._inner.close(code, reason)


class FirstSessionHalfOpen(MemoryConnector):
    """The first connection goes half-open at once; later ones are healthy."""

    def __init__(self) -> None:
        super().__init__()
        self.half_open: HalfOpen | None = None

    @asynccontextmanager
    async def connect(self):
        async with super().connect() as socket:
            if self.half_open is None:
                self.half_open = HalfOpen(socket)
                yield self.half_open
            else:
                yield socket


async def test_a_half_open_provider_is_pinged_then_replaced_and_the_call_goes_on(autojump_clock):
    """TCP alive, no events, no pongs: after the silence limit a new session opens (the call
    is not ended), having sent pings meanwhile."""
    connector = FirstSessionHalfOpen()
    with structlog.testing.capture_logs() as logs:
        async with call(settings(silence_timeout_s=30, ping_interval_s=10), connector=connector) as c:
            await connector.server_ends.receive()  # the half-open one
            started = trio.current_time()
            second = await c.ai()
            replaced_after = trio.current_time() - started
            await c.twilio.stop()
    assert 30 <= replaced_after < 45
    assert connector.half_open.pings >= 1
    assert c.summary.end.reason is EndReason.TWILIO_STOP
    assert c.summary.ai_sessions == 2
    assert any(entry["event"] == "ai.silent" for entry in logs)
    assert second is not None


async def test_a_twilio_stream_that_falls_silent_ends_the_call_with_a_reason(autojump_clock):
    """Twilio sends media every 20 ms, silence included: nothing for the limit means the
    stream is gone; the call ends as twilio_silent with 1001 and its summary."""
    call_settings = dataclasses.replace(settings(), twilio_silence_s=15)
    async with call(call_settings) as c:
        await c.ai()
        started = trio.current_time()
        with trio.fail_after(60):
            await c.ended.wait()
    assert 15 <= trio.current_time() - started < 20
    assert c.summary.end.reason is EndReason.TWILIO_SILENT
    assert c.twilio.socket.peer.close_code == CloseCode.GOING_AWAY


async def test_a_watchdog_that_wakes_up_late_does_not_call_the_peer_gone(autojump_clock):
    """The loop stalls for 5 s (overload): the peer's last message looks 5 s old, but the
    watchdog woke late, so it looks again instead of cutting; the peer was fine."""
    heard = trio.current_time()
    verdicts: list[float] = []

    async def watch() -> None:
        verdicts.append(await wait_for_silence(lambda: heard, limit_s=3, period_s=1))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        await trio.sleep(0.5)
        autojump_clock.jump(5)  # every task, the peer's reader too, was held up this long
        await trio.lowlevel.checkpoint()
        heard = trio.current_time()  # the reader catches up with what was waiting
        await trio.sleep(2.5)
        assert verdicts == []
        nursery.cancel_scope.cancel()
