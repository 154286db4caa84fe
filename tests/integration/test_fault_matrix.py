"""The fault matrix over real sockets: each fault, what its call does, and that nothing leaks.

Every row asserts what the faulty call does (ends with its reason, or goes on), that each
call writes exactly one summary, that the gateway's task count is back where it started
once the calls are over (no leaked task), and, where the fault belongs to one call, that
a neighbouring call placed at the same time went through untouched. The remaining rows
of the matrix live where their machinery is: SIGTERM with live calls (tests/e2e/
test_drain.py), a stuck admin client (test_admin.py), a stalled log pipe (tests/e2e/
test_stalled_logs.py), a provider that stops reading (tests/unit/test_call_barrier.py).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections import Counter
from functools import partial

import structlog
import trio

from gateway.settings import DEV_TWILIO_ACCOUNT_SID, DEV_TWILIO_AUTH_TOKEN, Settings
from gateway.simulator.audio import caller_phrase
from gateway.simulator.caller import CallReport, CallScript, simulate_call
from gateway.simulator.load import LoadGenerator, LoadPlan
from tests.integration.harness import (
    close_code,
    media_stream,
    new_call_sid,
    running,
    start_message,
    stream_token,
)

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
LEFT: list[str] = []


def tasks() -> int:
    """Every task alive in this trio run."""
    return len(task_names())


def task_names() -> list[str]:
    names, stack = [], [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        names.append(task.name)
        stack += [child for nursery in task.child_nurseries for child in nursery.child_tasks]
    return names


async def until_tasks_settle(baseline: int, seconds: float = 10) -> int:
    """The task count once it is back to `baseline` (or after `seconds`): calls wind down."""
    for _ in range(int(seconds / 0.05)):
        if tasks() <= baseline:
            break
        await trio.sleep(0.05)
    return tasks()


def summaries(logs) -> list[dict]:
    return [entry for entry in logs if entry["event"] == "call.summary"]


async def neighbour_call(settings, reports: list[CallReport]) -> None:
    script = CallScript(utterance=caller_phrase(), max_seconds=20)
    reports.append(
        await simulate_call(settings.public_url, DEV_TWILIO_AUTH_TOKEN, DEV_TWILIO_ACCOUNT_SID, script)
    )


def load(settings, calls: int, seconds: float, **behaviour) -> LoadGenerator:
    plan = LoadPlan(settings.public_url, DEV_TWILIO_AUTH_TOKEN, DEV_TWILIO_ACCOUNT_SID, calls, seconds, 1.0,
                    **behaviour)  # fmt: skip
    return LoadGenerator(plan)


class TestCallers:
    async def test_callers_hanging_up_while_the_assistant_talks_many_at_once(self):
        """40 callers, every one hanging up early (after the greeting, mid-word, while the
        assistant talks, or dropping the line): each call ends on its caller's terms with one
        summary, the gateway ends none itself, leaks no task, and serves the next call."""
        with structlog.testing.capture_logs() as logs:
            async with running() as gateway:
                baseline = tasks()
                generator = load(gateway.settings, 40, 12, hangups=1.0)
                await generator.run()
                left = await until_tasks_settle(baseline)
                LEFT[:] = task_names()
                neighbour: list[CallReport] = []
                await neighbour_call(gateway.settings, neighbour)
        summary = generator.summary()
        assert summary["hung_up_early"] == 40
        assert (summary["completed"], summary["ended_by_gateway"], summary["violations"]) == (40, 0, 0)
        reasons = sorted({entry["end_reason"] for entry in summaries(logs)})
        assert reasons == ["twilio_closed", "twilio_stop"]
        assert len(summaries(logs)) == 41
        assert left <= baseline, Counter(LEFT)
        assert neighbour[0].completed

    async def test_a_twilio_connection_that_drops_mid_response_ends_that_call_only(self):
        """A dropped Twilio connection (no stop, no close frame) while the assistant talks ends
        its call as twilio_closed; the neighbour placed alongside completes."""
        with structlog.testing.capture_logs() as logs:
            async with running() as gateway:
                generator = load(gateway.settings, 4, 10, hangups=1.0, seed=2)
                neighbour: list[CallReport] = []
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(neighbour_call, gateway.settings, neighbour)
                    await generator.run()
        dropped = [s for s in summaries(logs) if s["end_reason"] == "twilio_closed"]
        assert dropped
        assert all(s["stream_sid"] for s in dropped)
        assert neighbour[0].completed
        assert neighbour[0].violations == []

    async def test_a_half_open_twilio_stream_ends_as_twilio_silent(self):
        """Twilio's socket stays open but nothing more comes (a half-open connection): the
        call ends after the silence limit with 1001 and its summary."""
        with structlog.testing.capture_logs() as logs:
            async with running(twilio_silence_s=1.5) as gateway:
                settings = gateway.settings
                sid = new_call_sid()
                token = await stream_token(settings, sid)
                async with media_stream(settings) as ws:
                    await ws.send_message(start_message(sid, token))
                    code = await close_code(ws, seconds=10)
        [summary] = summaries(logs)
        assert (summary["end_reason"], code) == ("twilio_silent", 1001)


class HalfOpenProvider:
    """A realtime 'provider' that completes the WebSocket handshake, then says nothing at
    all: no events, no pongs (a peer gone without a close, TCP still up)."""

    def __init__(self) -> None:
        self.connections = 0

    async def serve(self, nursery: trio.Nursery, answer: bool = True) -> int:
        listeners = await nursery.start(partial(trio.serve_tcp, partial(self._connection, answer), 0,
                                                host="127.0.0.1"))  # fmt: skip
        return listeners[0].socket.getsockname()[1]

    async def _connection(self, answer: bool, stream: trio.SocketStream) -> None:
        self.connections += 1
        head = b""
        while b"\r\n\r\n" not in head:
            head += await stream.receive_some(65536)
        if answer:
            key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                       if line.lower().startswith(b"sec-websocket-key:"))  # fmt: skip
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            await stream.send_all(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
        try:
            while await stream.receive_some(65536):
                pass  # reads what it is sent, answers nothing
        except trio.BrokenResourceError:
            pass


def provider_env(port: int) -> dict[str, str]:
    return {"GATEWAY_AI_PROVIDER": "openai", "OPENAI_API_KEY": "sk-fault-matrix-key",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1", "GATEWAY_AI_PREWARM": "false"}  # fmt: skip


class TestProvider:
    async def test_a_half_open_provider_is_pinged_replaced_and_given_up_with_an_apology(self, nursery):
        """Handshake done, then silence, pings unanswered: each session is replaced after the
        silence limit (not after the kernel's 15 minutes) until the retries are spent; the
        caller hears the apology and the call ends as ai_unavailable with 1013."""
        provider = HalfOpenProvider()
        port = await provider.serve(nursery)
        with structlog.testing.capture_logs() as logs:
            async with running(provider_env(port), ai_ping_interval_s=0.3, ai_silence_timeout_s=1.0,
                               ai_reconnect_attempts=1, ai_reconnect_initial_ms=10) as gateway:  # fmt: skip
                baseline = tasks()
                script = CallScript(utterance=b"", max_seconds=20, greeting_timeout_s=30)
                settings = gateway.settings
                with trio.fail_after(20):
                    report = await simulate_call(settings.public_url, DEV_TWILIO_AUTH_TOKEN,
                                                 DEV_TWILIO_ACCOUNT_SID, script)  # fmt: skip
                left = await until_tasks_settle(baseline)
        [summary] = summaries(logs)
        assert summary["end_reason"] == "ai_unavailable"
        assert report.close_code == 1013
        assert sum(entry["event"] == "ai.silent" for entry in logs) == 2
        assert provider.connections == 2
        assert left <= baseline

    async def test_a_provider_that_never_answers_the_handshake_times_out_each_attempt(self, nursery):
        provider = HalfOpenProvider()
        port = await provider.serve(nursery, answer=False)
        with structlog.testing.capture_logs() as logs:
            async with running(provider_env(port), ai_connect_timeout_s=0.5, ai_reconnect_attempts=1,
                               ai_reconnect_initial_ms=10) as gateway:  # fmt: skip
                script = CallScript(utterance=b"", max_seconds=20, greeting_timeout_s=30)
                settings = gateway.settings
                with trio.fail_after(20):
                    report = await simulate_call(settings.public_url, DEV_TWILIO_AUTH_TOKEN,
                                                 DEV_TWILIO_ACCOUNT_SID, script)  # fmt: skip
        [summary] = summaries(logs)
        assert summary["end_reason"] == "ai_unavailable"
        assert report.close_code == 1013
        assert provider.connections == 2

    async def test_a_provider_that_expires_its_session_is_replaced_and_the_call_completes(self):
        with structlog.testing.capture_logs() as logs:
            env = {"GATEWAY_LOCAL_AGENT_EXPIRE_AFTER_S": "2"}
            async with running(env) as gateway:
                reports: list[CallReport] = []
                await neighbour_call(gateway.settings, reports)
        [summary] = summaries(logs)
        assert reports[0].completed
        assert summary["ai_sessions"] >= 2
        assert summary["end_reason"] == "twilio_stop"

    async def test_a_provider_that_reads_slowly_never_stalls_the_callers_side(self):
        """The AI takes 50 ms per client event while 50 a second arrive: what it has not read
        backs up towards it (bounded; past the bound the oldest caller audio is dropped and
        counted), while Twilio's side never stalls: every frame the caller sent was read,
        the greeting was heard, no violation, and the call ends when the caller hangs up."""
        with structlog.testing.capture_logs() as logs:
            async with running({"GATEWAY_LOCAL_AGENT_READ_DELAY_MS": "50"}) as gateway:
                reports: list[CallReport] = []
                await neighbour_call(gateway.settings, reports)
        [summary] = summaries(logs)
        report = reports[0]
        assert report.violations == []
        assert report.greeting_ms > 1000
        assert summary["frames_in"] == report.frames_sent
        assert (summary["end_reason"], report.close_code) == ("twilio_stop", 1000)

    async def test_a_drop_in_one_call_leaves_its_neighbour_alone(self):
        """The provider drops one session mid-answer (one drop in the process): that call
        reconnects and goes on; the other call, placed at the same time, is never touched."""
        with structlog.testing.capture_logs() as logs:
            env = {"GATEWAY_LOCAL_AGENT_DROP_AFTER_DELTAS": "10", "GATEWAY_LOCAL_AGENT_DROPS": "1"}
            async with running(env) as gateway:
                reports: list[CallReport] = []
                async with trio.open_nursery() as calls:
                    for _ in range(2):
                        calls.start_soon(neighbour_call, gateway.settings, reports)
        reconnects = sorted(s["ai_reconnects"] for s in summaries(logs))
        assert reconnects == [0, 1]
        assert all(report.completed for report in reports)


def test_the_matrix_names_real_settings():
    """The overrides used above are settings fields (a typo would silently test nothing)."""
    names = {field.name for field in dataclasses.fields(Settings)}
    assert {"twilio_silence_s", "ai_ping_interval_s", "ai_silence_timeout_s", "ai_connect_timeout_s"} <= names
