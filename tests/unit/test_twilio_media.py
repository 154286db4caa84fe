"""The Twilio Media Streams protocol: what Twilio may send, and exactly what we send back."""

import base64
import contextlib
import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.errors import CloseCode, LocalProtocolError, RemoteProtocolError
from actors.twilio_media import (
    Connected,
    Dtmf,
    Mark,
    Media,
    Start,
    Stop,
    StreamState,
    TwilioMediaProtocol,
)

STREAM = "MZ" + "a" * 32
CALL = "CA" + "b" * 32
ACCOUNT = "AC" + "c" * 32


def connected():
    return json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})


def start(seq=1, params=None, stream=STREAM):
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": str(seq),
            "start": {
                "accountSid": ACCOUNT,
                "streamSid": stream,
                "callSid": CALL,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": params or {"token": "t1"},
            },
            "streamSid": stream,
        }
    )


def media(seq, payload=b"\xff" * 160, stream=STREAM, chunk=1, timestamp=0):
    return json.dumps(
        {
            "event": "media",
            "sequenceNumber": str(seq),
            "media": {
                "track": "inbound",
                "chunk": str(chunk),
                "timestamp": str(timestamp),
                "payload": base64.b64encode(payload).decode(),
            },
            "streamSid": stream,
        }
    )


def stop(seq):
    return json.dumps(
        {
            "event": "stop",
            "sequenceNumber": str(seq),
            "stop": {"accountSid": ACCOUNT, "callSid": CALL},
            "streamSid": STREAM,
        }
    )


def started_protocol():
    protocol = TwilioMediaProtocol()
    protocol.receive(connected())
    protocol.receive(start())
    return protocol


class TestLifecycle:
    def test_a_whole_stream_parses_into_typed_events(self):
        """connected, start, media, dtmf, mark and stop become typed events with parsed numbers."""
        protocol = TwilioMediaProtocol()
        assert protocol.receive(connected()) == Connected(protocol="Call", version="1.0.0")
        started = protocol.receive(start(params={"token": "abc", "FirstName": "Jane"}))
        assert isinstance(started, Start)
        assert (started.call_sid, started.stream_sid, started.account_sid) == (CALL, STREAM, ACCOUNT)
        assert started.custom_parameters == {"token": "abc", "FirstName": "Jane"}
        frame = protocol.receive(media(2, b"\x01\x02", chunk=1, timestamp=20))
        assert frame == Media(
            sequence_number=2, track="inbound", chunk=1, timestamp_ms=20, payload=b"\x01\x02"
        )
        dtmf = {
            "event": "dtmf",
            "sequenceNumber": "3",
            "streamSid": STREAM,
            "dtmf": {"track": "inbound_track", "digit": "5"},
        }
        assert protocol.receive(json.dumps(dtmf)) == Dtmf(sequence_number=3, digit="5")
        mark = {"event": "mark", "sequenceNumber": "4", "streamSid": STREAM, "mark": {"name": "m1"}}
        assert protocol.receive(json.dumps(mark)) == Mark(sequence_number=4, name="m1")
        assert protocol.receive(stop(5)) == Stop(sequence_number=5, account_sid=ACCOUNT, call_sid=CALL)
        assert protocol.state is StreamState.STOPPED

    def test_connected_is_optional(self):
        """A stream that opens directly with start is accepted."""
        protocol = TwilioMediaProtocol()
        assert isinstance(protocol.receive(start()), Start)

    def test_unknown_fields_are_accepted(self):
        """Twilio adds fields over time; an extra field on an inbound event is not an error."""
        protocol = started_protocol()
        data = json.loads(media(2))
        data["media"]["newField"] = "x"
        data["extra"] = 1
        assert isinstance(protocol.receive(json.dumps(data)), Media)

    def test_sequence_gaps_are_counted_not_fatal(self):
        """Missing sequence numbers are counted as loss and the stream goes on."""
        protocol = started_protocol()
        protocol.receive(media(2))
        protocol.receive(media(5))
        protocol.receive(media(6))
        assert protocol.sequence_gaps == 2


class TestRemoteErrors:
    @pytest.mark.parametrize(
        ("frame", "code", "reason"),
        [
            (b'{"event":"media"}', CloseCode.UNSUPPORTED_DATA, "binary"),
            ("not json", CloseCode.INVALID_PAYLOAD, "not JSON"),
            ("[1,2]", CloseCode.INVALID_PAYLOAD, "not a JSON object"),
            ('{"event":"hello"}', CloseCode.INVALID_PAYLOAD, "unknown Twilio event"),
            ("x" * 70000, CloseCode.MESSAGE_TOO_BIG, "exceeds"),
        ],
    )
    def test_malformed_unknown_and_oversized_frames_are_remote_errors(self, frame, code, reason):
        """Each kind of bad frame raises RemoteProtocolError with a reason and a fitting close code."""
        protocol = started_protocol()
        with pytest.raises(RemoteProtocolError, match=reason) as info:
            protocol.receive(frame)
        assert info.value.close_code == code

    def test_media_before_start_is_an_error(self):
        """Audio before the stream has started cannot belong to any call."""
        with pytest.raises(RemoteProtocolError, match="awaiting_start"):
            TwilioMediaProtocol().receive(media(1))

    def test_second_start_is_an_error(self):
        """A stream starts once."""
        protocol = started_protocol()
        with pytest.raises(RemoteProtocolError, match="second 'start'"):
            protocol.receive(start(2))

    def test_events_after_stop_are_errors(self):
        """Nothing may follow stop."""
        protocol = started_protocol()
        protocol.receive(stop(2))
        with pytest.raises(RemoteProtocolError, match="stopped"):
            protocol.receive(media(3))

    def test_media_for_another_stream_is_an_error(self):
        """A frame carrying a different streamSid than start announced is refused."""
        protocol = started_protocol()
        with pytest.raises(RemoteProtocolError, match="another streamSid"):
            protocol.receive(media(2, stream="MZ" + "f" * 32))

    @pytest.mark.parametrize(
        "mutate",
        [
            lambda d: d["media"].pop("payload"),
            lambda d: d["media"].update(payload="***not base64***"),
            lambda d: d["media"].update(payload="\u00e9t\u00e9"),
            lambda d: d["media"].update(timestamp=20),
            lambda d: d["media"].update(chunk="-1"),
            lambda d: d.pop("sequenceNumber"),
            lambda d: d.update(media="payload"),
        ],
        ids=[
            "no-payload",
            "bad-base64",
            "non-ascii-payload",
            "numeric-timestamp",
            "negative-chunk",
            "no-sequence",
            "media-not-object",
        ],
    )
    def test_malformed_media_fields_are_errors(self, mutate):
        """Missing or mistyped media fields are remote protocol errors, not crashes."""
        protocol = started_protocol()
        data = json.loads(media(2))
        mutate(data)
        with pytest.raises(RemoteProtocolError):
            protocol.receive(json.dumps(data))

    @pytest.mark.parametrize(
        "mutate",
        [
            lambda d: d["start"].update(streamSid='MZ"injected'),
            lambda d: d["start"].update(
                mediaFormat={"encoding": "audio/l16", "sampleRate": 16000, "channels": 1}
            ),
            lambda d: d["start"].update(customParameters={"token": 5}),
            lambda d: d["start"].update(tracks="inbound"),
            lambda d: d.update(streamSid="MZ" + "9" * 32),
        ],
        ids=["sid-with-quote", "not-mulaw", "non-string-parameter", "tracks-not-list", "two-stream-sids"],
    )
    def test_malformed_start_is_an_error(self, mutate):
        """A start we could not safely act on is refused before the call begins."""
        data = json.loads(start())
        mutate(data)
        with pytest.raises(RemoteProtocolError):
            TwilioMediaProtocol().receive(json.dumps(data))

    def test_dtmf_digit_must_be_a_keypad_key(self):
        """A dtmf event with something other than one keypad key is refused."""
        protocol = started_protocol()
        bad = {"event": "dtmf", "sequenceNumber": "2", "streamSid": STREAM, "dtmf": {"digit": "55"}}
        with pytest.raises(RemoteProtocolError, match="keypad"):
            protocol.receive(json.dumps(bad))


class TestSending:
    def test_media_has_exactly_the_documented_fields(self):
        """Outbound media carries event, streamSid and media.payload only (Twilio warns 31951 on extras)."""
        protocol = started_protocol()
        message = orjson.loads(protocol.media(b"\x00\xff" * 80))
        assert message == {
            "event": "media",
            "streamSid": STREAM,
            "media": {"payload": base64.b64encode(b"\x00\xff" * 80).decode()},
        }

    def test_mark_and_clear_have_exactly_the_documented_fields(self):
        """mark carries mark.name; clear carries nothing but the stream."""
        protocol = started_protocol()
        assert orjson.loads(protocol.mark('g1:"item"')) == {
            "event": "mark",
            "streamSid": STREAM,
            "mark": {"name": 'g1:"item"'},
        }
        assert orjson.loads(protocol.clear()) == {"event": "clear", "streamSid": STREAM}

    def test_sending_before_start_is_a_local_error(self):
        """We never send media without a streamSid: doing so is our bug, raised as LocalProtocolError."""
        with pytest.raises(LocalProtocolError):
            TwilioMediaProtocol().media(b"\xff")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
event_like = st.fixed_dictionaries(
    {"event": st.sampled_from(["media", "mark", "dtmf", "stop", "start", "connected", "x"])},
    optional={
        "streamSid": st.just(STREAM) | st.text(max_size=5),
        "sequenceNumber": st.text(max_size=4),
        "media": json_values,
        "mark": json_values,
        "dtmf": json_values,
        "stop": json_values,
        "start": json_values,
    },
)


class TestFuzz:
    @settings(max_examples=400, deadline=None)
    @given(frame=st.one_of(st.text(max_size=200), st.binary(max_size=50), event_like.map(json.dumps)))
    def test_any_frame_yields_an_event_or_a_remote_error(self, frame):
        """Whatever a peer sends, the protocol answers with an event or RemoteProtocolError, never a crash."""
        protocol = started_protocol()
        with contextlib.suppress(RemoteProtocolError):
            protocol.receive(frame)
