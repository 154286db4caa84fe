"""Realtime speech-to-speech protocol, sans-I/O: the subset the gateway speaks.

Rules of this file:

- Two dialects. `GA` is OpenAI Realtime GA (also Azure OpenAI's GA endpoint):
  `session.type` is `realtime`, formats sit under `audio.input` / `audio.output`. OpenAI
  switched its beta protocol off on 2026-05-12, so GA never sends a beta field.
  `VOICE_LIVE` is Azure AI Voice Live on its dated api-versions: the beta session shape
  (flat `input_audio_format: g711_ulaw`...) plus Azure's VAD fields. Both share every
  other client event.
- Receive side: every frame must be a JSON object with a string `type`; the events the
  gateway acts on are parsed into frozen dataclasses with their fields checked, and a
  malformed one raises `RemoteProtocolError`. Event types we do not act on (the API has
  dozens and adds more) become `OtherEvent`. GA and beta names are both read
  (`response.output_audio.delta` and `response.audio.delta`): Voice Live sends the beta
  names, and some live OpenAI models were reported to.
- Send side: functions return the JSON text of one client event.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from actors.errors import CloseCode, RemoteProtocolError

# session.updated echoes the whole configuration (instructions and tool schemas included);
# 4 MiB bounds what a misbehaving server can make us parse.
DEFAULT_MAX_MESSAGE_CHARS = 4 * 1024 * 1024

# Errors after which the session cannot go on (the socket closes next or the
# configuration is wrong); every other error is logged and the call continues.
FATAL_ERROR_CODES = frozenset({"session_expired", "beta_api_shape_disabled", "invalid_api_key"})


class AudioFormat(StrEnum):
    """How call audio travels to the AI: G.711 untouched, or transcoded to PCM16 24 kHz."""

    PCMU = "pcmu"
    PCM24K = "pcm24k"

    @property
    def wire_format(self) -> dict[str, Any]:
        if self is AudioFormat.PCMU:
            return {"type": "audio/pcmu"}
        # gpt-realtime-2.1 rejects audio/pcm without an explicit rate (2026-08 report).
        return {"type": "audio/pcm", "rate": 24000}

    @property
    def bytes_per_ms(self) -> int:
        return 8 if self is AudioFormat.PCMU else 48


@dataclass(frozen=True, slots=True)
class TurnDetection:
    """Server VAD settings; explicit values, since server defaults have changed before."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    create_response: bool = True
    interrupt_response: bool = True


@dataclass(frozen=True, slots=True)
class SessionConfig:
    model: str
    instructions: str
    voice: str
    audio_format: AudioFormat
    turn_detection: TurnDetection = field(default_factory=TurnDetection)
    transcription_model: str = ""  # caller transcripts, needed to replay a conversation; "" = off
    tools: tuple[Mapping[str, Any], ...] = ()


# ---- client events ---------------------------------------------------------------

SESSION_UPDATE_EVENT_ID = "gw_session_update"


class Dialect(StrEnum):
    GA = "ga"
    VOICE_LIVE = "voice_live"


def session_update(config: SessionConfig, dialect: Dialect = Dialect.GA) -> str:
    """`session.update` in the dialect's shape; errors about it echo `SESSION_UPDATE_EVENT_ID`."""
    session = _voice_live_session(config) if dialect is Dialect.VOICE_LIVE else _ga_session(config)
    event = {"type": "session.update", "event_id": SESSION_UPDATE_EVENT_ID, "session": session}
    return orjson.dumps(event).decode()


def _vad(turn: TurnDetection) -> dict[str, Any]:
    return {
        "type": "server_vad",
        "threshold": turn.threshold,
        "prefix_padding_ms": turn.prefix_padding_ms,
        "silence_duration_ms": turn.silence_duration_ms,
        "create_response": turn.create_response,
        "interrupt_response": turn.interrupt_response,
    }


def _ga_session(config: SessionConfig) -> dict[str, Any]:
    transcription = {"model": config.transcription_model} if config.transcription_model else None
    session: dict[str, Any] = {
        "type": "realtime",
        "model": config.model,
        "output_modalities": ["audio"],
        "instructions": config.instructions,
        "audio": {
            "input": {
                "format": config.audio_format.wire_format,
                "transcription": transcription,
                "turn_detection": _vad(config.turn_detection),
            },
            "output": {"format": config.audio_format.wire_format, "voice": config.voice},
        },
    }
    if config.tools:
        session["tools"] = list(config.tools)
        session["tool_choice"] = "auto"
    return session


def _voice_live_session(config: SessionConfig) -> dict[str, Any]:
    ulaw = config.audio_format is AudioFormat.PCMU
    # Azure voices are named like en-US-Ava:DragonHDLatestNeural; plain names are OpenAI voices.
    azure_voice = "-" in config.voice and "Neural" in config.voice
    voice = {"type": "azure-standard", "name": config.voice} if azure_voice else config.voice
    transcription = {"model": config.transcription_model} if config.transcription_model else None
    session: dict[str, Any] = {
        "modalities": ["text", "audio"],
        "instructions": config.instructions,
        "voice": voice,
        "input_audio_format": "g711_ulaw" if ulaw else "pcm16",
        "input_audio_sampling_rate": 8000 if ulaw else 24000,
        "output_audio_format": "g711_ulaw" if ulaw else "pcm16",
        "input_audio_transcription": transcription,
        # Voice Live defaults these to false, unlike OpenAI; and the gateway truncates
        # exactly itself, so the server's own auto_truncate stays off.
        "turn_detection": {**_vad(config.turn_detection), "auto_truncate": False},
    }
    if config.tools:
        session["tools"] = list(config.tools)
        session["tool_choice"] = "auto"
    return session


_APPEND_PREFIX = '{"type":"input_audio_buffer.append","audio":"'


def input_audio_append(audio: bytes) -> str:
    """`input_audio_buffer.append` with raw audio bytes in the session's input format."""
    return _APPEND_PREFIX + binascii.b2a_base64(audio, newline=False).decode("ascii") + '"}'


def response_create() -> str:
    return '{"type":"response.create"}'


def response_cancel() -> str:
    return '{"type":"response.cancel"}'


# Assistant text content is "output_text" in GA and "text" in the beta shape Voice Live speaks.
_ASSISTANT_TEXT = {Dialect.GA: "output_text", Dialect.VOICE_LIVE: "text"}


def text_item(role: str, text: str, dialect: Dialect = Dialect.GA) -> str:
    """`conversation.item.create` with a text message (replayed turns, keypad entries)."""
    kind = _ASSISTANT_TEXT[dialect] if role == "assistant" else "input_text"
    item = {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}
    return orjson.dumps({"type": "conversation.item.create", "item": item}).decode()


def function_call_output(call_id: str, output: str) -> str:
    item = {"type": "function_call_output", "call_id": call_id, "output": output}
    return orjson.dumps({"type": "conversation.item.create", "item": item}).decode()


def item_truncate(item_id: str, content_index: int, audio_end_ms: int) -> str:
    event = {
        "type": "conversation.item.truncate",
        "item_id": item_id,
        "content_index": content_index,
        "audio_end_ms": audio_end_ms,
    }
    return orjson.dumps(event).decode()


# ---- server events ---------------------------------------------------------------


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
