"""Turn-taking and resilience of a whole call, on the virtual clock.

A fake Twilio plays what it gets in (virtual) real time and echoes marks; the AI is
scripted by each test; call control is recorded.
"""

import dataclasses
from contextlib import asynccontextmanager

import numpy as np
import pytest
import trio

from actors import g711
from actors.ai_state import AISettings
from actors.call_control import CallControlError
from actors.errors import CloseCode
from actors.messages import EndReason
from actors.realtime import AudioFormat, SessionConfig
from actors.supervisor import CallSettings, CallSupervisor
from actors.tools import ToolPolicy
from actors.twilio_media import TwilioMediaProtocol
from tests.fakes import FakeTwilio, ScriptedAI
from tests.memory_socket import MemoryConnector, socket_pair
from tests.unit.test_twilio_media import start

APOLOGY = b"\x55" * 8 * 400  # 400 ms, recognisable


class RecordingControl:
    def __init__(self, fail_transfer=False):
        self.requests = []
        self.fail_transfer = fail_transfer

    async def hang_up(self):
        self.requests.append(("hang_up",))

    async def transfer(self, destination):
        self.requests.append(("transfer", destination))
        if self.fail_transfer:
            raise CallControlError("HTTP 400, Twilio error 21210: 'From' phone number not verified")


def settings(**ai_overrides):
    config = SessionConfig("gpt-realtime", "hi", "marin", AudioFormat.PCMU, transcription_model="whisper")
    ai = AISettings(
        config=config,
        greet_first=False,
        apology=APOLOGY,
        tools=ToolPolicy(transfer_to="+15550001111", transfer_allowed=frozenset({"+15550002222"})),
    )
    # The fake Twilio here sends only what a test scripts, not Twilio's ceaseless media frames.
    return CallSettings(ai=dataclasses.replace(ai, **ai_overrides), twilio_silence_s=3600)


class Call:
    def __init__(self, nursery, call_settings, connector, control):
        gateway_end, twilio_end = socket_pair(buffer=4096)
        protocol = TwilioMediaProtocol()
        self.supervisor = CallSupervisor(
            protocol.receive(start()), gateway_end, protocol, connector, call_settings, control=control
        )
        self.twilio = FakeTwilio(twilio_end)
        self.connector = connector
        self.control = control
        self.summary = None
        self.ended = trio.Event()
        nursery.start_soon(self.twilio.run)
        nursery.start_soon(self._run)

    async def _run(self):
        self.summary = await self.supervisor.run()
        self.ended.set()

    async def ai(self) -> ScriptedAI:
        ai = ScriptedAI(await self.connector.server_ends.receive())
        await ai.next("session.update")
        return ai

    def heard(self) -> bytes:
        return bytes(self.twilio.playback.heard)


@asynccontextmanager
async def call(call_settings=None, connector=None, control=None):
    async with trio.open_nursery() as nursery:
        c = Call(nursery, call_settings or settings(), connector or MemoryConnector(), control)
        yield c
        with trio.move_on_after(10):  # let the call end and write its summary
            await c.ended.wait()
        nursery.cancel_scope.cancel()


def speech(ms, fill=0x11):
    return bytes([fill]) * (8 * ms)


class TestBargeIn:
    async def test_truncate_lands_where_the_caller_stopped_hearing(self, autojump_clock):
        """speech_started mid-answer: clear at once, truncate at the heard position (within 20 ms)."""
        async with call() as c:
            ai = await c.ai()
            await ai.speak("r1", "i1", speech(3000), done=False)
            await trio.sleep(1.2)
            detected = trio.current_time()
            await ai.send("input_audio_buffer.speech_started", item_id="u1", audio_start_ms=5000)
            truncate = await ai.next("conversation.item.truncate")
            played_ms = c.twilio.playback.audio_bytes_played / 8
            await c.twilio.stop()
        assert c.twilio.clear_times[0] - detected < 0.001
        assert truncate["item_id"] == "i1"
        assert truncate["content_index"] == 0
        assert abs(truncate["audio_end_ms"] - played_ms) <= 20
        assert c.summary.truncations == 1
        assert c.summary.clear_latency_ms_max < 1

    async def test_late_deltas_of_the_cut_response_never_play(self, autojump_clock):
        """Deltas the provider still sends for the interrupted response are discarded."""
        async with call() as c:
            ai = await c.ai()
            await ai.speak("r1", "i1", speech(1000), done=False)
            await trio.sleep(0.3)
            await ai.send("input_audio_buffer.speech_started", item_id="u1", audio_start_ms=1)
            await ai.next("conversation.item.truncate")
            await ai.speak("r1", "i1", speech(500, 0x22), done=False)  # late
            await ai.done("r1", "cancelled", "turn_detected")
            await ai.speak("r2", "i2", speech(400, 0x33))
            await trio.sleep(1)
            await c.twilio.stop()
        assert b"\x22" not in c.heard()
        assert speech(400, 0x33) in c.heard()
        assert c.summary.stale_audio_discarded > 0

    async def test_nothing_heard_means_no_truncate(self, autojump_clock):
        """A barge-in before any of the answer was heard sends no truncate (it would be refused)."""
        async with call() as c:
            ai = await c.ai()
            await ai.send("input_audio_buffer.speech_started", item_id="u1", audio_start_ms=1)
            await ai.speak("r1", "i1", speech(200))
            await trio.sleep(0.5)
            await ai.send("input_audio_buffer.speech_started", item_id="u2", audio_start_ms=1)
            await trio.sleep(0.5)
            await ai.drain()
            await c.twilio.stop()
        assert ai.sent("conversation.item.truncate") == []  # all heard by then: nothing to cut either

    async def test_a_caller_who_speaks_into_silence_takes_a_turn_without_a_barge_in(self, autojump_clock):
        """speech_started while nothing plays or is being generated: no clear, no barge-in counted."""
        async with call() as c:
            ai = await c.ai()
            await ai.speak("r1", "i1", speech(300))
            await ai.done("r1")
            await trio.sleep(1)  # the answer has played out, its marks echoed
            await ai.send("input_audio_buffer.speech_started", item_id="u1", audio_start_ms=1300)
            await trio.sleep(0.5)
            await c.twilio.stop()
        assert c.twilio.clear_times == []
        assert c.summary.barge_ins == 0
        assert c.summary.clears_sent == 0


class TestTools:
    async def test_end_call_waits_for_the_goodbye_then_hangs_up(self, autojump_clock):
        """end_call: output sent, no new response; the goodbye plays out whole, then hang-up and close."""
        control = RecordingControl()
        async with call(control=control) as c:
            ai = await c.ai()
            goodbye = bytes(range(1, 121)) * 100  # 1.5 s
            await ai.speak("r1", "i1", goodbye)
            await ai.call_tool("r1", "end_call", '{"reason":"done"}')
            await ai.done("r1")
            output = await ai.next("conversation.item.create")
            with trio.fail_after(5):
                await c.ended.wait()
            await ai.drain()
        assert output["item"]["type"] == "function_call_output"
        assert '"ok":true' in output["item"]["output"]
        assert ai.sent("response.create") == []
        assert goodbye in c.heard()
        assert control.requests == [("hang_up",)]
        assert c.summary.end.reason is EndReason.AI_HANGUP
        assert c.twilio.socket.peer.close_code == CloseCode.NORMAL

    async def test_transfer_dials_the_default_line_after_the_announcement(self, autojump_clock):
        """transfer_call with no destination transfers to the configured number once heard."""
        control = RecordingControl()
        async with call(control=control) as c:
            ai = await c.ai()
            await ai.speak("r1", "i1", speech(500))
            await ai.call_tool("r1", "transfer_call", "{}")
            await ai.done("r1")
            with trio.fail_after(5):
                await c.ended.wait()
        assert control.requests == [("transfer", "+15550001111")]
        assert c.summary.end.reason is EndReason.TRANSFERRED

    async def test_a_failed_transfer_is_told_to_the_model_and_the_call_goes_on(self, autojump_clock):
        """When Twilio refuses the transfer, the model gets a note and a new response; no hang-up."""
        control = RecordingControl(fail_transfer=True)
        async with call(control=control) as c:
            ai = await c.ai()
            await ai.call_tool("r1", "transfer_call", '{"destination":"+15550002222"}')
            await ai.done("r1")
            note = await ai.next("conversation.item.create")
            note = await ai.next("conversation.item.create")
            await ai.next("response.create")
            await c.twilio.stop()
        assert control.requests == [("transfer", "+15550002222")]
        assert "21210" in note["item"]["content"][0]["text"]
        assert c.summary.end.reason is EndReason.TWILIO_STOP

    @pytest.mark.parametrize(
        ("name", "arguments", "error"),
        [
            ("book_flight", "{}", "unknown tool"),
            ("transfer_call", '{"destination":"+15559999999"}', "not allowed"),
            ("transfer_call", '{"destination":"555"}', "not an E.164"),
            ("end_call", "{not json", "not valid JSON"),
        ],
    )
    async def test_bad_tool_calls_get_an_error_output_and_a_new_response(
        self, autojump_clock, name, arguments, error
    ):
        """Unknown tools and bad arguments are answered with an error, so the model can recover."""
        control = RecordingControl()
        async with call(control=control) as c:
            ai = await c.ai()
            await ai.call_tool("r1", name, arguments)
            await ai.done("r1")
            output = await ai.next("conversation.item.create")
            await ai.next("response.create")
            await c.twilio.stop()
        assert error in output["item"]["output"]
        assert control.requests == []

    async def test_tool_calls_of_an_interrupted_response_are_not_carried_out(self, autojump_clock):
        """If the caller barged in, the response's end_call is answered 'not carried out'."""
        control = RecordingControl()
        async with call(control=control) as c:
            ai = await c.ai()
            await ai.speak("r1", "i1", speech(1000), done=False)
            await ai.send("input_audio_buffer.speech_started", item_id="u1", audio_start_ms=1)
            await ai.call_tool("r1", "end_call", "{}")
            await ai.done("r1", "cancelled", "turn_detected")
            output = await ai.next("conversation.item.create")
            await trio.sleep(1)
            await c.twilio.stop()
        assert "not carried out" in output["item"]["output"]
        assert control.requests == []
        assert c.summary.end.reason is EndReason.TWILIO_STOP


class TestKeypad:
    async def test_keys_typed_together_reach_the_ai_as_one_entry(self, autojump_clock):
        """1, 2, 3 pressed quickly become one user item, then one response.create."""
        async with call() as c:
            ai = await c.ai()
            for digit in "123":
                await c.twilio.press(digit)
                await trio.sleep(0.3)
            item = await ai.next("conversation.item.create")
            await ai.next("response.create")
            await c.twilio.stop()
        assert item["item"]["content"] == [
            {"type": "input_text", "text": "The caller pressed 1, 2, 3 on the phone keypad."}
        ]
        assert c.summary.dtmf_entries == 1
        assert c.summary.dtmf_digits == 3

    async def test_a_reply_requested_during_an_answer_waits_for_it(self, autojump_clock):
        """A key pressed while the AI is answering: its response.create follows that response.done."""
        async with call() as c:
            ai = await c.ai()
            await ai.speak("r1", "i1", speech(500), done=False)
            await c.twilio.press("#")
            await ai.next("conversation.item.create")
            await trio.sleep(0.5)
            assert ai.sent("response.create") == []
            await ai.done("r1")
            await ai.next("response.create")
            await c.twilio.stop()


class TestResilience:
    async def test_a_dropped_ai_is_reconnected_and_the_conversation_replayed(self, autojump_clock):
        """After an abnormal close a new session gets the config and both sides' transcripts, no greeting."""
        async with call() as c:
            first = await c.ai()
            await first.send("input_audio_buffer.speech_started", item_id="u1", audio_start_ms=1)
            await first.send(
                "conversation.item.input_audio_transcription.completed",
                item_id="u1",
                content_index=0,
                transcript="What are your hours?",
            )
            await first.speak("r1", "i1", speech(600), done=False)
            await first.send(
                "response.output_audio_transcript.delta",
                response_id="r1",
                item_id="i1",
                delta="We open at nine",
            )
            await trio.sleep(0.2)
            await first.socket.close(1006)
            second = await c.ai()
            replay = [await second.next("conversation.item.create") for _ in range(2)]
            await c.twilio.say(b"\x01" * 160)
            await second.next("input_audio_buffer.append")
            await c.twilio.stop()
        assert [(r["item"]["role"], r["item"]["content"][0]["text"]) for r in replay] == [
            ("user", "What are your hours?"),
            ("assistant", "We open at nine"),
        ]
        assert second.sent("response.create") == []  # the assistant spoke last: no re-greeting
        assert c.summary.ai_reconnects == 1
        assert c.summary.ai_sessions == 2
        assert c.summary.end.reason is EndReason.TWILIO_STOP

    async def test_sessions_are_recycled_at_a_turn_boundary_before_the_cap(self, autojump_clock):
        """Past the recycle age, the session is replaced once nobody speaks; the caller hears no cut."""
        async with call(settings(recycle_after_s=60)) as c:
            first = await c.ai()
            await first.speak("r1", "i1", speech(2000))
            await first.done("r1")
            await trio.sleep(59.5)
            await first.send("input_audio_buffer.speech_started", item_id="u1", audio_start_ms=1)
            await trio.sleep(2)  # the caller is speaking: no recycle yet
            assert c.summary is None
            await first.send("input_audio_buffer.speech_stopped", item_id="u1", audio_end_ms=2)
            await c.ai()  # the next session
            await c.twilio.stop()
        assert first.socket.peer.close_code == CloseCode.NORMAL
        assert c.summary.ai_sessions == 2

    async def test_an_unreachable_ai_gets_an_apology_then_the_call_ends(self, autojump_clock):
        """Backoff, bounded attempts, then the caller hears the apology and the call ends ai_unavailable."""
        connector = MemoryConnector()
        connector.refuse = "connection refused"
        async with call(settings(reconnect_attempts=3), connector=connector) as c:
            with trio.fail_after(30):
                await c.ended.wait()
        assert APOLOGY in c.heard()
        assert c.summary.end.reason is EndReason.AI_UNAVAILABLE
        assert c.summary.ai_reconnects == 3
        assert c.twilio.socket.peer.close_code == CloseCode.TRY_AGAIN_LATER

    async def test_a_rejected_key_is_not_retried(self, autojump_clock):
        """HTTP 401 at the handshake cannot get better: no retries, apology, ai_error."""
        connector = MemoryConnector()
        connector.refuse = "rejected the handshake with HTTP 401"
        connector.refuse_status = 401
        async with call(connector=connector) as c:
            with trio.fail_after(30):
                await c.ended.wait()
        assert c.summary.end.reason is EndReason.AI_ERROR
        assert c.summary.ai_reconnects == 0
        assert APOLOGY in c.heard()

    async def test_session_expiry_reconnects_at_once(self, autojump_clock):
        """session_expired is followed by a new session without backoff."""
        async with call() as c:
            first = await c.ai()
            await first.send(
                "error",
                error={"type": "invalid_request_error", "code": "session_expired", "message": "60 minutes"},
            )
            before = trio.current_time()
            await c.ai()
            assert trio.current_time() - before < 0.01
            await c.twilio.stop()
        assert c.summary.ai_sessions == 2

    async def test_a_refused_session_update_ends_the_call_as_ai_error(self, autojump_clock):
        """An error about our session.update is a configuration problem: apology, ai_error, no retry loop."""
        async with call() as c:
            ai = await c.ai()
            await ai.send(
                "error",
                error={
                    "type": "invalid_request_error",
                    "code": "unknown_parameter",
                    "message": "Unknown parameter",
                    "event_id": "gw_session_update",
                },
            )
            with trio.fail_after(30):
                await c.ended.wait()
        assert c.summary.end.reason is EndReason.AI_ERROR
        assert c.summary.ai_sessions == 1


class TestLocalBargeIn:
    async def test_the_gateways_own_vad_stops_the_assistant_before_the_provider_does(self, autojump_clock):
        """With local barge-in on, loud caller audio during an answer clears Twilio and cancels it."""
        call_settings = dataclasses.replace(settings(), local_barge_in=True)
        async with call(call_settings) as c:
            ai = await c.ai()
            await ai.speak("r1", "i1", speech(3000), done=False)
            await trio.sleep(0.5)
            loud = g711.encode((np.sin(np.arange(160) * 2 * np.pi * 300 / 8000) * 10000).astype(np.int16))
            for _ in range(5):
                await c.twilio.say(loud)
                await trio.sleep(0.02)
            await ai.next("response.cancel")
            await ai.next("conversation.item.truncate")
            # The provider's own speech_started for the same turn does not clear twice.
            await ai.send("input_audio_buffer.speech_started", item_id="u1", audio_start_ms=1)
            await trio.sleep(0.2)
            await c.twilio.stop()
        assert len(c.twilio.clear_times) == 1
        assert c.summary.barge_ins == 1
