"""The call supervisor: actors wired per call, first end wins, sockets closed, one summary."""

import base64
import json
from dataclasses import dataclass, field

import numpy as np
import orjson
import pytest
import structlog
import trio

from actors import g711
from actors.ai_state import AISettings
from actors.errors import CloseCode
from actors.messages import CallEnd, EndReason
from actors.realtime import AudioFormat, SessionConfig
from actors.summary import CallSummary
from actors.supervisor import CallSettings, CallSupervisor
from actors.twilio_media import TwilioMediaProtocol
from tests.memory_socket import MemoryConnector, MemorySocket, socket_pair
from tests.unit.test_twilio_media import STREAM, media, start, stop


@dataclass
class Call:
    supervisor: CallSupervisor
    twilio: MemorySocket  # the Twilio side, driven by the test
    connector: MemoryConnector
    done: trio.Event = field(default_factory=trio.Event)
    summary: CallSummary | None = None

    async def ai(self) -> MemorySocket:
        return await self.connector.server_ends.receive()


def settings(audio_format=AudioFormat.PCMU, greet_first=True):
    session = SessionConfig("gpt-realtime", "hi", "marin", audio_format)
    ai = AISettings(config=session, greet_first=greet_first, reconnect_attempts=0)
    return CallSettings(ai=ai, twilio_silence_s=3600)  # tests script Twilio's messages one by one


async def open_call(nursery, call_settings=None, connector=None) -> Call:
    gateway_end, twilio_end = socket_pair()
    protocol = TwilioMediaProtocol()
    started = protocol.receive(start())
    connector = connector or MemoryConnector()
    supervisor = CallSupervisor(started, gateway_end, protocol, connector, call_settings or settings())
    call = Call(supervisor, twilio_end, connector)

    async def run():
        call.summary = await supervisor.run()
        call.done.set()

    nursery.start_soon(run)
    return call


def delta(response, item, audio: bytes):
    return json.dumps(
        {
            "type": "response.output_audio.delta",
            "response_id": response,
            "item_id": item,
            "output_index": 0,
            "content_index": 0,
            "delta": base64.b64encode(audio).decode(),
        }
    )


def event(type_, **fields):
    return json.dumps({"type": type_, **fields})


async def twilio_messages(twilio: MemorySocket, count: int):
    return [orjson.loads(await twilio.receive()) for _ in range(count)]


class TestPassthroughCall:
    async def test_audio_flows_both_ways_untouched_and_stop_ends_the_call(self, autojump_clock):
        """Caller bytes reach the AI as-is; AI bytes reach Twilio unchanged, the whole frames in
        one media message (up to 100 ms each), the part frame with the item's end and its
        mark; stop ends it cleanly."""
        async with trio.open_nursery() as nursery:
            call = await open_call(nursery)
            ai = await call.ai()
            assert orjson.loads(await ai.receive())["type"] == "session.update"
            assert orjson.loads(await ai.receive()) == {"type": "response.create"}

            caller_frame = bytes(range(160))
            await call.twilio.send(media(2, caller_frame))
            append = orjson.loads(await ai.receive())
            assert append == {
                "type": "input_audio_buffer.append",
                "audio": base64.b64encode(caller_frame).decode(),
            }

            speech = bytes(range(256)) + bytes(range(144))  # 400 bytes: two full frames and a tail
            await ai.send(event("response.created", response={"id": "r1", "status": "in_progress"}))
            await ai.send(delta("r1", "i1", speech))
            await ai.send(event("response.output_audio.done", response_id="r1", item_id="i1"))
            sent = await twilio_messages(call.twilio, 3)
            payloads = [base64.b64decode(m["media"]["payload"]) for m in sent[:2]]
            assert [len(p) for p in payloads] == [320, 80]
            assert b"".join(payloads) == speech
            assert sent[2] == {"event": "mark", "streamSid": STREAM, "mark": {"name": "0.1"}}

            await call.twilio.send(stop(3))
            await call.done.wait()
        summary = call.summary
        assert summary.end == CallEnd(EndReason.TWILIO_STOP)
        assert (summary.frames_in, summary.frames_out) == (1, 3)  # 20 ms frames, the tail counted
        assert call.twilio.peer.close_code == CloseCode.NORMAL
        assert ai.peer.close_code == CloseCode.NORMAL

    async def test_no_codec_actor_runs_in_passthrough(self, autojump_clock):
        """With pcmu no codec actor exists and two audio channels suffice: no sample is touched."""
        async with trio.open_nursery() as nursery:
            call = await open_call(nursery)
            assert "codec_worker" not in call.supervisor._actors
            assert [c.name for c in call.supervisor.channels] == ["caller_audio", "assistant_audio"]
            call.supervisor.end(CallEnd(EndReason.SHUTDOWN))


class TestTranscodingCall:
    async def test_caller_audio_reaches_the_ai_as_pcm24k_and_back_as_mulaw(self, autojump_clock):
        """With pcm24k, 20 ms of mu-law reach the AI as 960 bytes of PCM16; AI PCM returns as mu-law."""
        async with trio.open_nursery() as nursery:
            call = await open_call(nursery, settings(AudioFormat.PCM24K, greet_first=False))
            ai = await call.ai()
            session = orjson.loads(await ai.receive())["session"]
            assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}

            await call.twilio.send(media(2, g711.encode(np.full(160, 1000, dtype=np.int16))))
            append = orjson.loads(await ai.receive())
            assert len(base64.b64decode(append["audio"])) == 960

            pcm = (np.sin(np.arange(2400) * 2 * np.pi * 440 / 24000) * 8000).astype("<i2").tobytes()
            await ai.send(delta("r1", "i1", pcm[:1001]))  # an odd split mid-sample
            await ai.send(delta("r1", "i1", pcm[1001:]))
            await ai.send(event("response.output_audio.done", response_id="r1", item_id="i1"))
            frames, marks = [], 0
            while marks < 2:  # one mark after the first 100 ms, one after the item's last frame
                message = orjson.loads(await call.twilio.receive())
                marks += message["event"] == "mark"
                if message["event"] == "media":
                    frames.append(base64.b64decode(message["media"]["payload"]))
            heard = g711.decode(b"".join(frames)).astype(float)
            assert len(heard) == (2400 + 40 + 2) // 3  # 100 ms, plus the filter tail of 40 samples at 24 kHz
            level = np.sqrt(np.mean(heard[100:700] ** 2))
            assert level == pytest.approx(8000 / np.sqrt(2), rel=0.05)
            call.supervisor.end(CallEnd(EndReason.SHUTDOWN))
        assert {"caller_pcm", "assistant_ulaw"} <= set(call.summary.drops)


class TestBargeIn:
    async def test_speech_started_clears_twilio_and_discards_the_interrupted_response(self, autojump_clock):
        """On speech_started Twilio gets clear; late deltas of the cancelled response never play."""
        async with trio.open_nursery() as nursery:
            call = await open_call(nursery, settings(greet_first=False))
            ai = await call.ai()
            await ai.receive()
            await ai.send(event("response.created", response={"id": "r1"}))
            await ai.send(delta("r1", "i1", b"\x01" * 160))
            assert (await twilio_messages(call.twilio, 1))[0]["event"] == "media"

            await ai.send(event("input_audio_buffer.speech_started", item_id="u1", audio_start_ms=900))
            assert (await twilio_messages(call.twilio, 1))[0] == {"event": "clear", "streamSid": STREAM}
            await ai.send(delta("r1", "i1", b"\x02" * 160))  # late delta of the interrupted response
            await ai.send(
                event(
                    "response.done",
                    response={
                        "id": "r1",
                        "status": "cancelled",
                        "status_details": {"reason": "turn_detected"},
                    },
                )
            )
            await ai.send(event("response.created", response={"id": "r2"}))
            await ai.send(delta("r2", "i2", b"\x03" * 160))
            played = await twilio_messages(call.twilio, 1)
            assert base64.b64decode(played[0]["media"]["payload"]) == b"\x03" * 160
            call.supervisor.end(CallEnd(EndReason.SHUTDOWN))
        assert call.summary.barge_ins == 1
        assert call.summary.clears_sent == 1
        assert call.summary.stale_audio_discarded == 1


class TestEndings:
    async def test_malformed_twilio_frame_ends_the_call_with_1007(self, autojump_clock):
        """A garbage frame from Twilio ends that call as twilio_protocol_error, closing with 1007."""
        async with trio.open_nursery() as nursery:
            call = await open_call(nursery)
            ai = await call.ai()
            await call.twilio.send("{not json")
            await call.done.wait()
        assert call.summary.end.reason is EndReason.TWILIO_PROTOCOL_ERROR
        assert call.twilio.peer.close_code == CloseCode.INVALID_PAYLOAD
        assert ai.peer.close_code == CloseCode.NORMAL

    async def test_twilio_socket_closing_without_stop_ends_the_call(self, autojump_clock):
        """A bare close from Twilio is an end of call too, and the AI socket is closed after it."""
        async with trio.open_nursery() as nursery:
            call = await open_call(nursery)
            ai = await call.ai()
            await call.twilio.close(1006)
            await call.done.wait()
        assert call.summary.end.reason is EndReason.TWILIO_CLOSED
        assert ai.peer.close_code == CloseCode.NORMAL

    async def test_unreachable_ai_ends_the_call_as_ai_unavailable(self, autojump_clock):
        """When the AI cannot be reached the call ends as ai_unavailable and Twilio gets 1013."""
        connector = MemoryConnector()
        connector.refuse = "HTTP 401"
        async with trio.open_nursery() as nursery:
            call = await open_call(nursery, connector=connector)
            await call.done.wait()
        assert call.summary.end == CallEnd(EndReason.AI_UNAVAILABLE, "HTTP 401", CloseCode.TRY_AGAIN_LATER)
        assert call.twilio.peer.close_code == CloseCode.TRY_AGAIN_LATER  # no apology configured here

    async def test_fatal_ai_error_ends_the_call(self, autojump_clock):
        """The provider refusing our configuration ends the call as ai_error with 1011."""
        refusal = {
            "type": "invalid_request_error",
            "code": "invalid_value",
            "message": "bad format",
            "event_id": "gw_session_update",
        }
        async with trio.open_nursery() as nursery:
            call = await open_call(nursery)
            ai = await call.ai()
            await ai.send(event("error", error=refusal))
            await call.done.wait()
        assert call.summary.end.reason is EndReason.AI_ERROR
        assert call.summary.end.detail == "fatal error: invalid_value"
        assert call.twilio.peer.close_code == CloseCode.INTERNAL_ERROR

    async def test_benign_ai_error_is_logged_and_the_call_goes_on(self, autojump_clock):
        """A non-fatal provider error is counted, not fatal."""
        async with trio.open_nursery() as nursery:
            call = await open_call(nursery)
            ai = await call.ai()
            await ai.send(
                event(
                    "error",
                    error={
                        "type": "invalid_request_error",
                        "code": "response_cancel_not_active",
                        "message": "m",
                    },
                )
            )
            await trio.sleep(1)
            assert not call.done.is_set()
            await call.twilio.send(stop(2))
        assert call.summary.end.reason is EndReason.TWILIO_STOP
        assert call.summary.ai_errors == 1

    async def test_ai_socket_dropping_with_no_retries_left_ends_the_call(self, autojump_clock):
        """The AI closing its socket mid-call, with no reconnect allowed, ends the call as ai_unavailable."""
        async with trio.open_nursery() as nursery:
            call = await open_call(nursery)
            ai = await call.ai()
            await ai.close(1011)
            await call.done.wait()
        assert call.summary.end.reason is EndReason.AI_UNAVAILABLE
        assert "code 1011" in call.summary.end.detail

    async def test_malformed_ai_frame_closes_that_session_with_its_code(self, autojump_clock):
        """A broken frame from the AI ends its session with 1007 (and, with no retries left, the call)."""
        async with trio.open_nursery() as nursery:
            call = await open_call(nursery)
            ai = await call.ai()
            await ai.send('{"type":"response.output_audio.delta","delta":"x"}')
            await call.done.wait()
        assert call.summary.end.detail.startswith("protocol error")
        assert ai.peer.close_code == CloseCode.INVALID_PAYLOAD

    async def test_external_end_closes_with_its_code(self, autojump_clock):
        """end() from outside (a drain) stops every actor and closes Twilio with the given code."""
        async with trio.open_nursery() as nursery:
            call = await open_call(nursery)
            await call.ai()
            call.supervisor.end(CallEnd(EndReason.SHUTDOWN, "drain", CloseCode.GOING_AWAY))
            call.supervisor.end(CallEnd(EndReason.TWILIO_STOP))  # a later end does not replace the first
            await call.done.wait()
        assert call.summary.end.reason is EndReason.SHUTDOWN
        assert call.twilio.peer.close_code == CloseCode.GOING_AWAY


class BrokenSocket(MemorySocket):
    async def send(self, message: str) -> None:
        if '"media"' in message:
            raise RuntimeError("bug in the downlink")
        await super().send(message)


class TestIsolation:
    async def test_a_crashing_actor_ends_only_its_own_call(self, autojump_clock):
        """A crashing actor ends its own call as internal_error; a concurrent call carries on."""
        async with trio.open_nursery() as nursery:
            healthy = await open_call(nursery)
            healthy_ai = await healthy.ai()

            gateway_end, twilio_end = socket_pair()
            gateway_end.__class__ = BrokenSocket
            protocol = TwilioMediaProtocol()
            connector = MemoryConnector()
            broken = CallSupervisor(protocol.receive(start()), gateway_end, protocol, connector, settings())
            broken_summary = []
            nursery.start_soon(lambda: _collect(broken, broken_summary))
            broken_ai = await connector.server_ends.receive()
            await broken_ai.send(delta("r", "i", b"\x00" * 160))
            await trio.sleep(1)

            assert broken_summary[0].end.reason is EndReason.INTERNAL_ERROR
            assert twilio_end.peer.close_code == CloseCode.INTERNAL_ERROR
            await healthy_ai.send(delta("r", "i", b"\x05" * 160))
            assert (await twilio_messages(healthy.twilio, 1))[0]["event"] == "media"
            await healthy.twilio.send(stop(2))
        assert healthy.summary.end.reason is EndReason.TWILIO_STOP


async def _collect(supervisor, out):
    out.append(await supervisor.run())


class TestSummaryRecord:
    async def test_every_call_writes_exactly_one_summary_record(self, autojump_clock):
        """One call.summary log line per call, with sids, duration, end reason, frame counts and drops."""
        with structlog.testing.capture_logs() as logs:
            async with trio.open_nursery() as nursery:
                call = await open_call(nursery)
                await call.ai()
                for seq in range(2, 12):
                    await call.twilio.send(media(seq))
                await trio.sleep(3)
                await call.twilio.send(stop(12))
        summaries = [entry for entry in logs if entry["event"] == "call.summary"]
        assert len(summaries) == 1
        record = summaries[0]
        assert record["end_reason"] == "twilio_stop"
        assert record["frames_in"] == 10
        assert record["duration_s"] == pytest.approx(3, abs=0.1)
        assert record["drops"] == {"caller_audio": 0, "assistant_audio": 0}
        assert record["close_code"] == 1000

    async def test_summary_is_written_even_when_the_call_task_is_cancelled(self, autojump_clock):
        """If the whole server is cancelled under a call, the call still reports, as shutdown."""
        with structlog.testing.capture_logs() as logs:
            async with trio.open_nursery() as nursery:
                await open_call(nursery)
                await trio.sleep(1)
                nursery.cancel_scope.cancel()
        summaries = [entry for entry in logs if entry["event"] == "call.summary"]
        assert [s["end_reason"] for s in summaries] == ["shutdown"]
