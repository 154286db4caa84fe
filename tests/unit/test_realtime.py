"""The OpenAI Realtime GA protocol subset: session shape, client events, server event parsing."""

import base64
import contextlib
import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors import realtime
from actors.errors import CloseCode, RemoteProtocolError
from actors.realtime import (
    AudioDelta,
    AudioDone,
    AudioFormat,
    OtherEvent,
    RealtimeError,
    ResponseDone,
    SessionConfig,
    SpeechStarted,
    TurnDetection,
)


def config(audio_format=AudioFormat.PCMU):
    return SessionConfig(
        model="gpt-realtime", instructions="Be brief.", voice="marin", audio_format=audio_format
    )


class TestSessionUpdate:
    def test_pcmu_session_is_the_ga_shape(self):
        """session.update carries session.type realtime, nested audio formats and explicit server VAD."""
        event = orjson.loads(realtime.session_update(config()))
        assert event["type"] == "session.update"
        session = event["session"]
        assert session["type"] == "realtime"
        assert session["model"] == "gpt-realtime"
        assert session["output_modalities"] == ["audio"]
        assert session["instructions"] == "Be brief."
        assert session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
        assert session["audio"]["output"] == {"format": {"type": "audio/pcmu"}, "voice": "marin"}
        assert session["audio"]["input"]["turn_detection"] == {
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 500,
            "create_response": True,
            "interrupt_response": True,
        }

    def test_pcm_format_always_carries_its_rate(self):
        """audio/pcm is sent with rate 24000 (newer models reject it without)."""
        session = orjson.loads(realtime.session_update(config(AudioFormat.PCM24K)))["session"]
        assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
        assert session["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}

    def test_no_beta_field_is_sent(self):
        """None of the retired beta session fields appear anywhere in the message."""
        session = orjson.loads(realtime.session_update(config()))["session"]
        beta_fields = {
            "modalities",
            "voice",
            "input_audio_format",
            "output_audio_format",
            "turn_detection",
            "input_audio_transcription",
            "temperature",
            "max_response_output_tokens",
        }
        assert beta_fields.isdisjoint(session)
        assert "g711_ulaw" not in json.dumps(session)

    def test_turn_detection_settings_are_honoured(self):
        """Configured VAD values reach the wire unchanged."""
        cfg = SessionConfig("m", "", "cedar", AudioFormat.PCMU, TurnDetection(0.7, 200, 800, False, False))
        vad = orjson.loads(realtime.session_update(cfg))["session"]["audio"]["input"]["turn_detection"]
        assert (vad["threshold"], vad["prefix_padding_ms"], vad["silence_duration_ms"]) == (0.7, 200, 800)
        assert (vad["create_response"], vad["interrupt_response"]) == (False, False)


class TestClientEvents:
    def test_append_carries_base64_audio(self):
        """input_audio_buffer.append is valid JSON with the audio base64-encoded."""
        event = orjson.loads(realtime.input_audio_append(b"\x00\x01\xfe"))
        assert event == {
            "type": "input_audio_buffer.append",
            "audio": base64.b64encode(b"\x00\x01\xfe").decode(),
        }

    def test_truncate_names_item_index_and_position(self):
        """conversation.item.truncate has exactly the GA fields."""
        assert orjson.loads(realtime.item_truncate("item_1", 0, 1840)) == {
            "type": "conversation.item.truncate",
            "item_id": "item_1",
            "content_index": 0,
            "audio_end_ms": 1840,
        }


class TestServerEvents:
    def test_audio_delta_is_decoded(self):
        """response.output_audio.delta yields the raw audio bytes and the ids that own them."""
        frame = json.dumps(
            {
                "type": "response.output_audio.delta",
                "event_id": "e",
                "response_id": "r1",
                "item_id": "i1",
                "output_index": 0,
                "content_index": 0,
                "delta": base64.b64encode(b"\x7f" * 10).decode(),
            }
        )
        assert realtime.parse_server_event(frame) == AudioDelta("r1", "i1", 0, b"\x7f" * 10)

    def test_beta_audio_delta_name_is_read_as_an_alias(self):
        """A live model sending the beta event name still gets its audio played."""
        frame = json.dumps({"type": "response.audio.delta", "response_id": "r", "item_id": "i", "delta": ""})
        assert isinstance(realtime.parse_server_event(frame), AudioDelta)

    def test_speech_started_and_done_events(self):
        """speech_started, audio done and response.done carry what barge-in and accounting need."""
        assert realtime.parse_server_event(
            json.dumps({"type": "input_audio_buffer.speech_started", "item_id": "u1", "audio_start_ms": 1200})
        ) == SpeechStarted("u1", 1200)
        assert realtime.parse_server_event(
            json.dumps({"type": "response.output_audio.done", "response_id": "r", "item_id": "i"})
        ) == AudioDone("r", "i")
        done = realtime.parse_server_event(
            json.dumps(
                {
                    "type": "response.done",
                    "response": {
                        "id": "r",
                        "status": "cancelled",
                        "status_details": {"type": "cancelled", "reason": "turn_detected"},
                        "usage": {"total_tokens": 10},
                    },
                }
            )
        )
        assert done == ResponseDone("r", "cancelled", "turn_detected", {"total_tokens": 10})

    def test_errors_are_typed_and_fatal_ones_recognised(self):
        """An error event is parsed; session_expired and errors about our session.update are fatal."""

        def error(code, event_id=None):
            return realtime.parse_server_event(
                json.dumps(
                    {
                        "type": "error",
                        "error": {
                            "type": "invalid_request_error",
                            "code": code,
                            "message": "m",
                            "param": None,
                            "event_id": event_id,
                        },
                    }
                )
            )

        expired = error("session_expired")
        assert isinstance(expired, RealtimeError)
        assert expired.is_fatal
        assert not error("response_cancel_not_active").is_fatal
        assert error("unknown_parameter", realtime.SESSION_UPDATE_EVENT_ID).is_fatal

    def test_events_we_do_not_act_on_are_passed_over(self):
        """New or unused server event types are returned as OtherEvent, not treated as errors."""
        assert realtime.parse_server_event('{"type":"rate_limits.updated","rate_limits":[]}') == OtherEvent(
            "rate_limits.updated"
        )

    @pytest.mark.parametrize(
        ("frame", "code"),
        [
            (b"{}", CloseCode.UNSUPPORTED_DATA),
            ("{", CloseCode.INVALID_PAYLOAD),
            ('{"no_type": 1}', CloseCode.INVALID_PAYLOAD),
            (
                '{"type":"response.output_audio.delta","response_id":"r","item_id":"i","delta":"@@@"}',
                CloseCode.INVALID_PAYLOAD,
            ),
            (
                '{"type":"input_audio_buffer.speech_started","item_id":"i","audio_start_ms":"5"}',
                CloseCode.INVALID_PAYLOAD,
            ),
            ('{"type":"response.done"}', CloseCode.INVALID_PAYLOAD),
        ],
        ids=["binary", "not-json", "no-type", "bad-base64", "string-ms", "no-response"],
    )
    def test_malformed_events_are_remote_errors(self, frame, code):
        """A malformed server event raises RemoteProtocolError with a close code."""
        with pytest.raises(RemoteProtocolError) as info:
            realtime.parse_server_event(frame)
        assert info.value.close_code == code

    def test_oversized_frames_are_refused(self):
        """A frame above the limit is refused with 1009 before it is parsed."""
        with pytest.raises(RemoteProtocolError) as info:
            realtime.parse_server_event('{"type":"x","pad":"' + "a" * 100 + '"}', max_chars=50)
        assert info.value.close_code == CloseCode.MESSAGE_TOO_BIG

    @settings(max_examples=300, deadline=None)
    @given(
        st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "delta",
                    "response_id",
                    "item_id",
                    "response",
                    "error",
                    "audio_start_ms",
                    "session",
                    "transcript",
                ]
            ),
            st.none()
            | st.integers()
            | st.text(max_size=8)
            | st.dictionaries(st.text(max_size=5), st.text(max_size=5)),
        ).map(lambda d: {**d, "type": d.get("type") if "type" in d else "response.output_audio.delta"})
    )
    def test_any_object_yields_an_event_or_a_remote_error(self, data):
        """Whatever the server sends, parsing yields an event or RemoteProtocolError, never a crash."""
        with contextlib.suppress(RemoteProtocolError):
            realtime.parse_server_event(json.dumps(data))
