"""Twilio Media Streams (bidirectional), sans-I/O: JSON text in, typed events out.

Rules of this file, from Twilio's websocket-messages reference:

- Twilio sends `connected` (at most once), then `start` once, then `media`, `dtmf` and
  `mark` in any order, then `stop`. Anything before `start` other than `connected`, a
  second `start`, or anything after `stop` is a protocol error.
- `sequenceNumber`, `media.chunk`, `media.timestamp` are decimal *strings*; we parse them.
  Sequence gaps are counted, not fatal (Twilio does not promise gap-free delivery).
- Every message after `start` carries the `streamSid` that `start` announced.
- Unknown events, malformed JSON, binary frames and oversized frames end the call with
  a `RemoteProtocolError` carrying the close code to answer. Unknown *fields* are
  accepted: Twilio adds fields over time and says so.
- We send `media`, `mark` and `clear` only after `start`, with exactly the documented
  fields: Twilio answers a missing or extra field with warning 31951.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson

from actors.errors import CloseCode, LocalProtocolError, RemoteProtocolError

# A start message with a handful of custom parameters is about 700 characters and a
# media message about 400; 64 KiB leaves ample room and bounds what a peer can make us parse.
DEFAULT_MAX_MESSAGE_CHARS = 64 * 1024

# Twilio SIDs are two letters and 32 hex digits. We accept any short alphanumeric id so
# simulators and future formats work, but nothing that would need escaping in JSON.
_SID = re.compile(r"[A-Za-z0-9]{2,64}")


@dataclass(frozen=True, slots=True)
class MediaFormat:
    encoding: str
    sample_rate: int
    channels: int


@dataclass(frozen=True, slots=True)
class Connected:
    protocol: str
    version: str


@dataclass(frozen=True, slots=True)
class Start:
    sequence_number: int
    stream_sid: str
    account_sid: str
    call_sid: str
    tracks: tuple[str, ...]
    media_format: MediaFormat
    custom_parameters: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Media:
    sequence_number: int
    track: str
    chunk: int
    timestamp_ms: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Dtmf:
    sequence_number: int
    digit: str


@dataclass(frozen=True, slots=True)
class Mark:
    sequence_number: int
    name: str


@dataclass(frozen=True, slots=True)
class Stop:
    sequence_number: int
    account_sid: str
    call_sid: str


TwilioEvent = Connected | Start | Media | Dtmf | Mark | Stop


class StreamState(Enum):
    AWAITING_START = "awaiting_start"
    STREAMING = "streaming"
    STOPPED = "stopped"


class TwilioMediaProtocol:
    """One Twilio media stream: validates what Twilio sends, formats what we send."""

    def __init__(self, max_message_chars: int = DEFAULT_MAX_MESSAGE_CHARS) -> None:
        self.max_message_chars = max_message_chars
        self.state = StreamState.AWAITING_START
        self.stream_sid: str | None = None
        self.sequence_gaps = 0
        self._connected_seen = False
        self._next_sequence = 1
        self._media_prefix = ""
        self._clear = ""

    # ---- receiving -------------------------------------------------------------

    def receive(self, message: str | bytes) -> TwilioEvent:
        """Parse one frame from Twilio into an event, enforcing the rules above."""
        data = self._decode(message)
        event_type = data.get("event")
        if event_type == "media":  # the hot path: 50 a second per call
            return self._media(data)
        if event_type == "connected":
            return self._connected(data)
        if event_type == "start":
            return self._start(data)
        if event_type == "mark":
            return self._mark(data)
        if event_type == "dtmf":
            return self._dtmf(data)
        if event_type == "stop":
            return self._stop(data)
        raise RemoteProtocolError(f"unknown Twilio event {event_type!r}")

    def _decode(self, message: str | bytes) -> dict[str, Any]:
        if not isinstance(message, str):
            raise RemoteProtocolError("binary frame on a Twilio media stream", CloseCode.UNSUPPORTED_DATA)
        if len(message) > self.max_message_chars:
            raise RemoteProtocolError(
                f"frame of {len(message)} characters exceeds {self.max_message_chars}",
                CloseCode.MESSAGE_TOO_BIG,
            )
        try:
            data = orjson.loads(message)
        except orjson.JSONDecodeError as exc:
            raise RemoteProtocolError(f"frame is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise RemoteProtocolError("frame is not a JSON object")
        return data

    def _connected(self, data: dict[str, Any]) -> Connected:
        if self.state is not StreamState.AWAITING_START or self._connected_seen:
            raise RemoteProtocolError("unexpected 'connected' event")
        self._connected_seen = True
        return Connected(protocol=_text(data, "protocol"), version=_text(data, "version"))

    def _start(self, data: dict[str, Any]) -> Start:
        if self.state is not StreamState.AWAITING_START:
            raise RemoteProtocolError("second 'start' event")
        body = _object(data, "start")
        stream_sid = _sid(body, "streamSid")
        if data.get("streamSid", stream_sid) != stream_sid:
            raise RemoteProtocolError("'start' carries two different streamSids")
        event = Start(
            sequence_number=self._sequence(data),
            stream_sid=stream_sid,
            account_sid=_sid(body, "accountSid"),
            call_sid=_sid(body, "callSid"),
            tracks=_tracks(body),
            media_format=_media_format(body),
            custom_parameters=_parameters(body),
        )
        self.state = StreamState.STREAMING
        self.stream_sid = stream_sid
        self._media_prefix = '{"event":"media","streamSid":"' + stream_sid + '","media":{"payload":"'
        self._clear = '{"event":"clear","streamSid":"' + stream_sid + '"}'
        return event

    def _media(self, data: dict[str, Any]) -> Media:
        self._check_streaming(data, "media")
        body = _object(data, "media")
        payload = _text(body, "payload")
        try:
            audio = binascii.a2b_base64(payload, strict_mode=True)
        except ValueError as exc:  # binascii.Error, or a non-ASCII string
            raise RemoteProtocolError(f"media payload is not base64: {exc}") from None
        return Media(
            sequence_number=self._sequence(data),
            track=_text(body, "track"),
            chunk=_number(body, "chunk"),
            timestamp_ms=_number(body, "timestamp"),
            payload=audio,
        )

    def _mark(self, data: dict[str, Any]) -> Mark:
        self._check_streaming(data, "mark")
        return Mark(sequence_number=self._sequence(data), name=_text(_object(data, "mark"), "name"))

    def _dtmf(self, data: dict[str, Any]) -> Dtmf:
        self._check_streaming(data, "dtmf")
        digit = _text(_object(data, "dtmf"), "digit")
        if len(digit) != 1 or digit not in "0123456789*#ABCD":
            raise RemoteProtocolError(f"dtmf digit {digit!r} is not a keypad key")
        return Dtmf(sequence_number=self._sequence(data), digit=digit)

    def _stop(self, data: dict[str, Any]) -> Stop:
        self._check_streaming(data, "stop")
        body = _object(data, "stop")
        event = Stop(
            sequence_number=self._sequence(data),
            account_sid=_sid(body, "accountSid"),
            call_sid=_sid(body, "callSid"),
        )
        self.state = StreamState.STOPPED
        return event

    def _check_streaming(self, data: dict[str, Any], event_type: str) -> None:
        if self.state is not StreamState.STREAMING:
            raise RemoteProtocolError(f"'{event_type}' event while {self.state.value}")
        if data.get("streamSid") != self.stream_sid:
            raise RemoteProtocolError(f"'{event_type}' event for another streamSid")

    def _sequence(self, data: dict[str, Any]) -> int:
        number = _number(data, "sequenceNumber")
        if number > self._next_sequence:
            self.sequence_gaps += number - self._next_sequence
        self._next_sequence = max(self._next_sequence, number + 1)
        return number

    # ---- sending ---------------------------------------------------------------

    def media(self, payload: bytes) -> str:
        """A `media` message carrying raw mu-law bytes, with no field beyond the documented ones."""
        self._check_can_send()
        return self._media_prefix + binascii.b2a_base64(payload, newline=False).decode("ascii") + '"}}'

    def mark(self, name: str) -> str:
        """A `mark` message; Twilio echoes `name` back when playback reaches it."""
        self._check_can_send()
        message = {"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}}
        return orjson.dumps(message).decode()

    def clear(self) -> str:
        """A `clear` message: Twilio drops unplayed audio and echoes every pending mark."""
        self._check_can_send()
        return self._clear

    def _check_can_send(self) -> None:
        if self.state is not StreamState.STREAMING:
            raise LocalProtocolError(f"cannot send on a Twilio stream that is {self.state.value}")


def _object(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise RemoteProtocolError(f"field {key!r} is missing or not an object")
    return value


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise RemoteProtocolError(f"field {key!r} is missing or not a string")
    return value


def _number(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, str) and value.isdigit() and len(value) <= 18:
        return int(value)
    raise RemoteProtocolError(f"field {key!r} is missing or not a decimal string")


def _sid(data: dict[str, Any], key: str) -> str:
    value = _text(data, key)
    if not _SID.fullmatch(value):
        raise RemoteProtocolError(f"field {key!r} is not a Twilio SID")
    return value


def _tracks(body: dict[str, Any]) -> tuple[str, ...]:
    tracks = body.get("tracks")
    if not isinstance(tracks, list) or not all(isinstance(t, str) for t in tracks):
        raise RemoteProtocolError("field 'tracks' is missing or not a list of strings")
    return tuple(tracks)


def _media_format(body: dict[str, Any]) -> MediaFormat:
    fmt = _object(body, "mediaFormat")
    media_format = MediaFormat(
        encoding=_text(fmt, "encoding"),
        sample_rate=fmt.get("sampleRate", 0),
        channels=fmt.get("channels", 0),
    )
    if media_format != MediaFormat("audio/x-mulaw", 8000, 1):
        raise RemoteProtocolError(f"unsupported media format {media_format}")
    return media_format


def _parameters(body: dict[str, Any]) -> Mapping[str, str]:
    params = body.get("customParameters", {})
    if not isinstance(params, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in params.items()
    ):
        raise RemoteProtocolError("field 'customParameters' is not an object of strings")
    return params
