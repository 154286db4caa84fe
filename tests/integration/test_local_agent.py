"""The local agent over a real WebSocket: OpenAI's handshake rules, GA events, VAD, barge-in."""

import base64
import json
from contextlib import asynccontextmanager
from functools import partial

import numpy as np
import pytest
import trio
import trio_websocket

from actors import g711
from gateway.ai.local_agent import serve_local_agent
from gateway.ai.local_agent.options import AgentOptions
from gateway.ai.local_agent.replies import clip


@asynccontextmanager
async def agent(speed=50.0):
    async with trio.open_nursery() as nursery:
        endpoint = await nursery.start(partial(serve_local_agent, "gpt-realtime", AgentOptions(speed=speed)))
        yield endpoint
        nursery.cancel_scope.cancel()


class Client:
    def __init__(self, ws):
        self.ws = ws

    async def send(self, **event):
        await self.ws.send_message(json.dumps(event))

    async def next(self, event_type, seconds=5):
        """Skip events until one of `event_type`; return it."""
        with trio.fail_after(seconds):
            while True:
                event = json.loads(await self.ws.get_message())
                if event["type"] == event_type:
                    return event

    async def collect_audio(self, seconds=10):
        """Audio deltas until response.done; returns (audio, done event)."""
        audio = b""
        with trio.fail_after(seconds):
            while True:
                event = json.loads(await self.ws.get_message())
                if event["type"] == "response.output_audio.delta":
                    audio += base64.b64decode(event["delta"])
                elif event["type"] == "response.done":
                    return audio, event


@asynccontextmanager
async def session(endpoint, pcmu=True, headers=None):
    async with trio_websocket.open_websocket_url(
        endpoint.url, extra_headers=headers or endpoint.headers()
    ) as ws:
        client = Client(ws)
        assert (await client.next("session.created"))["session"]["type"] == "realtime"
        if pcmu:
            fmt = {"type": "audio/pcmu"}
            await client.send(
                type="session.update",
                session={"type": "realtime", "audio": {"input": {"format": fmt}, "output": {"format": fmt}}},
            )
            await client.next("session.updated")
        yield client


def tone_ulaw(ms, level=8000):
    n = 8 * ms
    return g711.encode((np.sin(np.arange(n) * 2 * np.pi * 300 / 8000) * level).astype(np.int16))


class TestHandshake:
    async def test_connection_without_the_api_key_is_refused_with_401(self):
        """Every endpoint is authenticated, even on loopback."""
        async with agent() as endpoint:
            with pytest.raises(trio_websocket.ConnectionRejected) as info:
                async with trio_websocket.open_websocket_url(
                    endpoint.url, extra_headers=[(b"Authorization", b"Bearer nope")]
                ):
                    pass
        assert info.value.status_code == 401

    async def test_beta_handshake_is_told_off_and_closed_with_4000(self):
        """Like OpenAI since 2026-05-12: OpenAI-Beta gets beta_api_shape_disabled, then close 4000."""
        async with agent() as endpoint:
            headers = [*endpoint.headers(), (b"OpenAI-Beta", b"realtime=v1")]
            async with trio_websocket.open_websocket_url(endpoint.url, extra_headers=headers) as ws:
                error = json.loads(await ws.get_message())
                with pytest.raises(trio_websocket.ConnectionClosed) as info:
                    await ws.get_message()
        assert error["error"]["code"] == "beta_api_shape_disabled"
        assert info.value.reason.code == 4000


class TestSessionUpdate:
    async def test_session_type_is_required(self):
        """session.update without session.type is refused as the GA server does."""
        async with agent() as endpoint, session(endpoint, pcmu=False) as client:
            await client.send(type="session.update", event_id="e1", session={"instructions": "x"})
            error = (await client.next("error"))["error"]
        assert (error["code"], error["param"], error["event_id"]) == (
            "missing_required_parameter",
            "session.type",
            "e1",
        )

    async def test_beta_fields_are_unknown_parameters(self):
        """A flat beta field such as input_audio_format is refused with unknown_parameter."""
        async with agent() as endpoint, session(endpoint, pcmu=False) as client:
            await client.send(
                type="session.update", session={"type": "realtime", "input_audio_format": "g711_ulaw"}
            )
            error = (await client.next("error"))["error"]
        assert error["code"] == "unknown_parameter"
        assert "session.input_audio_format" in error["message"]

    async def test_pcm_without_rate_is_refused(self):
        """audio/pcm output without a rate is refused, as gpt-realtime-2.1 does."""
        async with agent() as endpoint, session(endpoint, pcmu=False) as client:
            await client.send(
                type="session.update",
                session={"type": "realtime", "audio": {"output": {"format": {"type": "audio/pcm"}}}},
            )
            error = (await client.next("error"))["error"]
        assert error["param"] == "session.audio.output.format.rate"


class TestResponses:
    async def test_response_create_streams_the_greeting(self):
        """response.create plays the greeting clip as GA audio deltas, then response.done completed."""
        async with agent() as endpoint, session(endpoint) as client:
            await client.send(type="response.create")
            audio, done = await client.collect_audio()
        assert audio == clip("greeting")
        assert done["response"]["status"] == "completed"

    async def test_second_response_while_one_is_active_is_refused(self):
        """Only one response at a time: conversation_already_has_active_response."""
        async with agent(speed=2.0) as endpoint, session(endpoint) as client:
            await client.send(type="response.create")
            await client.next("response.output_audio.delta")
            await client.send(type="response.create")
            error = (await client.next("error"))["error"]
        assert error["code"] == "conversation_already_has_active_response"

    async def test_cancel_with_nothing_active_is_benign_error(self):
        """response.cancel with no response running yields response_cancel_not_active."""
        async with agent() as endpoint, session(endpoint) as client:
            await client.send(type="response.cancel")
            assert (await client.next("error"))["error"]["code"] == "response_cancel_not_active"

    async def test_truncate_past_the_audio_sent_is_refused(self):
        """Truncating beyond what was generated gives the 'already shorter than' error; within it works."""
        async with agent() as endpoint, session(endpoint) as client:
            await client.send(type="response.create")
            _, done = await client.collect_audio()
            item = done["response"]["output"][0]["id"]
            await client.send(
                type="conversation.item.truncate", item_id=item, content_index=0, audio_end_ms=999999
            )
            error = (await client.next("error"))["error"]
            await client.send(
                type="conversation.item.truncate", item_id=item, content_index=0, audio_end_ms=1000
            )
            truncated = await client.next("conversation.item.truncated")
        assert "is already shorter than 999999ms" in error["message"]
        assert truncated["audio_end_ms"] == 1000


class TestTurns:
    async def test_caller_speech_is_detected_and_played_back(self):
        """Silence, 800 ms of tone, silence: speech_started/stopped, then the tone comes back."""
        async with agent() as endpoint, session(endpoint) as client:
            spoken = tone_ulaw(800)
            audio = b"\xff" * 8 * 600 + spoken + b"\xff" * 8 * 700
            for offset in range(0, len(audio), 160):
                await client.send(
                    type="input_audio_buffer.append",
                    audio=base64.b64encode(audio[offset : offset + 160]).decode(),
                )
            started = await client.next("input_audio_buffer.speech_started")
            stopped = await client.next("input_audio_buffer.speech_stopped")
            echo, done = await client.collect_audio()
        assert started["audio_start_ms"] == 600 - 300  # speech at 600 ms, minus the prefix padding
        assert stopped["audio_end_ms"] == 1400
        assert spoken in echo
        assert done["response"]["status"] == "completed"

    async def test_speaking_over_a_response_cancels_it(self):
        """Speech during a response stops it: response.done cancelled with reason turn_detected."""
        async with agent(speed=1.0) as endpoint, session(endpoint) as client:
            await client.send(type="response.create")
            await client.next("response.output_audio.delta")
            loud = tone_ulaw(200)
            for offset in range(0, len(loud), 160):
                await client.send(
                    type="input_audio_buffer.append",
                    audio=base64.b64encode(loud[offset : offset + 160]).decode(),
                )
            await client.next("input_audio_buffer.speech_started")
            done = await client.next("response.done")
        assert done["response"]["status"] == "cancelled"
        assert done["response"]["status_details"]["reason"] == "turn_detected"


class TestScriptedTools:
    async def test_keypad_9_gets_a_goodbye_and_an_end_call_in_the_ga_flow(self):
        """Keypad 9: goodbye audio, then a function_call item with its call_id, then response.done."""
        async with agent() as endpoint, session(endpoint) as client:
            await client.send(
                type="conversation.item.create",
                item={
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "The caller pressed 9 on the phone keypad."}],
                },
            )
            await client.send(type="response.create")
            audio, done = await client.collect_audio()
            call = done["response"]["output"][1]
            await client.send(
                type="conversation.item.create",
                item={"type": "function_call_output", "call_id": "call_wrong", "output": "{}"},
            )
            wrong = await client.next("error")
            await client.send(
                type="conversation.item.create",
                item={"type": "function_call_output", "call_id": call["call_id"], "output": "{}"},
            )
            accepted = await client.next("conversation.item.added")
        assert audio == clip("goodbye")
        assert (call["type"], call["name"], call["status"]) == ("function_call", "end_call", "completed")
        assert "call_wrong" in wrong["error"]["message"]
        assert accepted["item"]["type"] == "function_call_output"

    async def test_other_keys_are_played_back_as_dtmf_tones(self):
        """Keys other than 9 and 0 come back as their dual tones, no tool call."""
        async with agent() as endpoint, session(endpoint) as client:
            await client.send(
                type="conversation.item.create",
                item={
                    "type": "message",
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "The caller pressed 1, 2 on the phone keypad."}
                    ],
                },
            )
            await client.send(type="response.create")
            audio, done = await client.collect_audio()
        assert len(audio) == 2 * (800 + 400)  # two 100 ms tones with 50 ms gaps
        assert len(done["response"]["output"]) == 1


class TestTranscription:
    async def test_a_placeholder_transcript_follows_each_caller_turn_when_configured(self):
        """With audio.input.transcription set, each committed turn gets a completed transcription event."""
        async with agent() as endpoint, session(endpoint) as client:
            await client.send(
                type="session.update",
                session={"type": "realtime", "audio": {"input": {"transcription": {"model": "whisper-1"}}}},
            )
            await client.next("session.updated")
            audio = b"\xff" * 8 * 300 + tone_ulaw(600) + b"\xff" * 8 * 700
            for offset in range(0, len(audio), 160):
                await client.send(
                    type="input_audio_buffer.append",
                    audio=base64.b64encode(audio[offset : offset + 160]).decode(),
                )
            transcript = await client.next("conversation.item.input_audio_transcription.completed")
        assert transcript["transcript"].startswith("(caller speech")


class TestFaults:
    async def test_drop_closes_mid_response_with_1011_once(self):
        """drop_after_deltas: the first session is closed with 1011 mid-response; the next one is not."""
        options = AgentOptions(speed=50, drop_after_deltas=5)
        async with trio.open_nursery() as nursery:
            endpoint = await nursery.start(partial(serve_local_agent, "gpt-realtime", options))
            async with session(endpoint) as client:
                await client.send(type="response.create")
                with pytest.raises(trio_websocket.ConnectionClosed) as info:
                    await client.collect_audio()
            async with session(endpoint) as client:
                await client.send(type="response.create")
                _, done = await client.collect_audio()
            nursery.cancel_scope.cancel()
        assert info.value.reason.code == 1011
        assert done["response"]["status"] == "completed"

    async def test_sessions_expire_with_session_expired_then_1001(self):
        """expire_after_s: an error event with session_expired, then a close with 1001."""
        options = AgentOptions(expire_after_s=0.2)
        async with trio.open_nursery() as nursery:
            endpoint = await nursery.start(partial(serve_local_agent, "gpt-realtime", options))
            async with session(endpoint) as client:
                error = await client.next("error")
                with pytest.raises(trio_websocket.ConnectionClosed) as info:
                    await client.next("never")
            nursery.cancel_scope.cancel()
        assert error["error"]["code"] == "session_expired"
        assert info.value.reason.code == 1001
