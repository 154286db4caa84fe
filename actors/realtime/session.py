"""The realtime session's configuration and its `session.update`, in each dialect.

Two dialects. `GA` is OpenAI Realtime GA (also Azure OpenAI's GA endpoint):
`session.type` is `realtime`, formats sit under `audio.input` / `audio.output`. OpenAI
switched its beta protocol off on 2026-05-12, so GA never sends a beta field.
`VOICE_LIVE` is Azure AI Voice Live on its dated api-versions: the beta session shape
(flat `input_audio_format: g711_ulaw`...) plus Azure's VAD fields. Both share every
other client event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson


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
