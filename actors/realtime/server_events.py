"""Server events of the realtime protocol, sans-I/O: one frame of text in, a typed event out.

Every frame must be a JSON object with a string `type`; the events the gateway acts on
are parsed into frozen dataclasses with their fields checked, and a malformed one
raises `RemoteProtocolError`. Event types we do not act on (the API has dozens and adds
more) become `OtherEvent`. GA and beta names are both read (`response.output_audio.delta`
and `response.audio.delta`): Voice Live sends the beta names, and some live OpenAI
models were reported to.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from actors.errors import CloseCode, RemoteProtocolError
from actors.realtime.session import SESSION_UPDATE_EVENT_ID

# session.updated echoes the whole configuration (instructions and tool schemas included);
# 4 MiB bounds what a misbehaving server can make us parse.
DEFAULT_MAX_MESSAGE_CHARS = 4 * 1024 * 1024

# Errors after which the session cannot go on (the socket closes next or the
# configuration is wrong); every other error is logged and the call continues.
FATAL_ERROR_CODES = frozenset({"session_expired", "beta_api_shape_disabled", "invalid_api_key"})


@dataclass(frozen=True, slots=True)
class SessionCreated:
    session_id: str
    expires_at: int | None


@dataclass(frozen=True, slots=True)
class SessionUpdated:
    session: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    item_id: str
    audio_start_ms: int


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    item_id: str
    audio_end_ms: int


@dataclass(frozen=True, slots=True)
class ResponseCreated:
    response_id: str


@dataclass(frozen=True, slots=True)
class AudioDelta:
    response_id: str
    item_id: str
    content_index: int
    audio: bytes


@dataclass(frozen=True, slots=True)
class AudioDone:
    response_id: str
    item_id: str


@dataclass(frozen=True, slots=True)
class AssistantTranscriptDelta:
    response_id: str
    item_id: str
    delta: str


@dataclass(frozen=True, slots=True)
class FunctionCall:
    response_id: str
    item_id: str
    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class AssistantTranscriptDone:
    response_id: str
    item_id: str
    transcript: str


@dataclass(frozen=True, slots=True)
class CallerTranscriptCompleted:
    item_id: str
    transcript: str


@dataclass(frozen=True, slots=True)
class ResponseDone:
    response_id: str
    status: str
    status_reason: str | None
    usage: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class RealtimeError:
    type: str
    code: str | None
    message: str
    param: str | None
    event_id: str | None

    @property
    def is_fatal(self) -> bool:
        return self.code in FATAL_ERROR_CODES or self.event_id == SESSION_UPDATE_EVENT_ID


@dataclass(frozen=True, slots=True)
class OtherEvent:
    type: str


ServerEvent = (
    SessionCreated
    | SessionUpdated
    | SpeechStarted
    | SpeechStopped
    | ResponseCreated
    | AudioDelta
    | AudioDone
    | AssistantTranscriptDelta
    | AssistantTranscriptDone
    | FunctionCall
    | CallerTranscriptCompleted
    | ResponseDone
    | RealtimeError
    | OtherEvent
)


def parse_server_event(message: str | bytes, max_chars: int = DEFAULT_MAX_MESSAGE_CHARS) -> ServerEvent:
    """Parse one frame from the AI server; raise `RemoteProtocolError` if it is malformed."""
    if not isinstance(message, str):
        raise RemoteProtocolError("binary frame from the realtime server", CloseCode.UNSUPPORTED_DATA)
    if len(message) > max_chars:
        raise RemoteProtocolError(
            f"frame of {len(message)} characters exceeds {max_chars}", CloseCode.MESSAGE_TOO_BIG
        )
    try:
        data = orjson.loads(message)
    except orjson.JSONDecodeError as exc:
        raise RemoteProtocolError(f"frame is not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise RemoteProtocolError("frame is not a JSON object with a string 'type'")
    parser = _PARSERS.get(data["type"])
    if parser is None:
        return OtherEvent(type=data["type"])
    return parser(data)


def _audio_delta(data: dict[str, Any]) -> AudioDelta:
    try:
        audio = binascii.a2b_base64(_text(data, "delta"), strict_mode=True)
    except ValueError as exc:  # binascii.Error, or a non-ASCII string
        raise RemoteProtocolError(f"audio delta is not base64: {exc}") from None
    return AudioDelta(
        response_id=_text(data, "response_id"),
        item_id=_text(data, "item_id"),
        content_index=_int(data, "content_index", default=0),
        audio=audio,
    )


def _audio_done(data: dict[str, Any]) -> AudioDone:
    return AudioDone(response_id=_text(data, "response_id"), item_id=_text(data, "item_id"))


def _session_created(data: dict[str, Any]) -> SessionCreated:
    session = _object(data, "session")
    expires_at = session.get("expires_at")
    return SessionCreated(
        session_id=str(session.get("id", "")),
        expires_at=expires_at if isinstance(expires_at, int) else None,
    )


def _session_updated(data: dict[str, Any]) -> SessionUpdated:
    return SessionUpdated(session=_object(data, "session"))


def _speech_started(data: dict[str, Any]) -> SpeechStarted:
    return SpeechStarted(item_id=_text(data, "item_id"), audio_start_ms=_int(data, "audio_start_ms"))


def _speech_stopped(data: dict[str, Any]) -> SpeechStopped:
    return SpeechStopped(item_id=_text(data, "item_id"), audio_end_ms=_int(data, "audio_end_ms"))


def _response_created(data: dict[str, Any]) -> ResponseCreated:
    return ResponseCreated(response_id=_text(_object(data, "response"), "id"))


def _response_done(data: dict[str, Any]) -> ResponseDone:
    response = _object(data, "response")
    details = response.get("status_details")
    reason = details.get("reason") if isinstance(details, dict) else None
    usage = response.get("usage")
    return ResponseDone(
        response_id=_text(response, "id"),
        status=_text(response, "status"),
        status_reason=reason if isinstance(reason, str) else None,
        usage=usage if isinstance(usage, dict) else None,
    )


def _transcript_done(data: dict[str, Any]) -> AssistantTranscriptDone:
    return AssistantTranscriptDone(
        response_id=_text(data, "response_id"),
        item_id=_text(data, "item_id"),
        transcript=_text(data, "transcript"),
    )


def _transcript_delta(data: dict[str, Any]) -> AssistantTranscriptDelta:
    return AssistantTranscriptDelta(
        response_id=_text(data, "response_id"), item_id=_text(data, "item_id"), delta=_text(data, "delta")
    )


def _output_item_done(data: dict[str, Any]) -> ServerEvent:
    item = _object(data, "item")
    if item.get("type") != "function_call":
        return OtherEvent(type=data["type"])
    return FunctionCall(
        response_id=_text(data, "response_id"),
        item_id=_text(item, "id"),
        call_id=_text(item, "call_id"),
        name=_text(item, "name"),
        arguments=str(item.get("arguments") or ""),
    )


def _caller_transcript(data: dict[str, Any]) -> CallerTranscriptCompleted:
    return CallerTranscriptCompleted(item_id=_text(data, "item_id"), transcript=_text(data, "transcript"))


def _error(data: dict[str, Any]) -> RealtimeError:
    error = _object(data, "error")
    return RealtimeError(
        type=str(error.get("type", "")),
        code=_optional_text(error, "code"),
        message=str(error.get("message", "")),
        param=_optional_text(error, "param"),
        event_id=_optional_text(error, "event_id"),
    )


_PARSERS: dict[str, Callable[[dict[str, Any]], ServerEvent]] = {
    "response.output_audio.delta": _audio_delta,
    "response.audio.delta": _audio_delta,  # beta name, read defensively
    "response.output_audio.done": _audio_done,
    "response.audio.done": _audio_done,
    "response.output_audio_transcript.delta": _transcript_delta,
    "response.audio_transcript.delta": _transcript_delta,
    "response.output_audio_transcript.done": _transcript_done,
    "response.audio_transcript.done": _transcript_done,
    "response.output_item.done": _output_item_done,
    "conversation.item.input_audio_transcription.completed": _caller_transcript,
    "input_audio_buffer.speech_started": _speech_started,
    "input_audio_buffer.speech_stopped": _speech_stopped,
    "response.created": _response_created,
    "response.done": _response_done,
    "session.created": _session_created,
    "session.updated": _session_updated,
    "error": _error,
}


def _object(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise RemoteProtocolError(f"{data.get('type')}: field {key!r} is missing or not an object")
    return value


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise RemoteProtocolError(f"{data.get('type')}: field {key!r} is missing or not a string")
    return value


def _optional_text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _int(data: dict[str, Any], key: str, default: int | None = None) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RemoteProtocolError(f"{data.get('type')}: field {key!r} is missing or not an integer")
    return value
