"""The local agent's side of the Realtime GA protocol, sans-I/O: the session object it
keeps, how a `session.update` is checked and applied (as strictly as the real server:
`session.type` required, beta fields refused), and the errors it answers with.
"""

from __future__ import annotations

import copy
from typing import Any

from actors.realtime import AudioFormat

BETA_SESSION_FIELDS = frozenset({
    "modalities", "input_audio_format", "output_audio_format", "turn_detection", "voice",
    "input_audio_transcription", "input_audio_noise_reduction", "temperature",
    "max_response_output_tokens", "speed",
})  # fmt: skip


class ClientError(Exception):
    """A client event the real server would refuse; becomes an `error` event."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


def default_session(model: str) -> dict[str, Any]:
    return {
        "type": "realtime", "object": "realtime.session", "id": "sess_loopback", "model": model,
        "output_modalities": ["audio"], "instructions": "", "tools": [], "tool_choice": "auto",
        "max_output_tokens": "inf", "expires_at": 0,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": None, "noise_reduction": None,
                "turn_detection": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                                   "silence_duration_ms": 500, "create_response": True,
                                   "interrupt_response": True},
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin", "speed": 1.0},
        },
    }  # fmt: skip


def updated_session(session: dict[str, Any], update: Any) -> dict[str, Any]:
    """`session` with a client's `session.update` applied, checked as the real server checks it."""
    if not isinstance(update, dict):
        raise ClientError("missing_required_parameter", "Missing required parameter: 'session'.", "session")
    if "type" not in update:
        raise ClientError(
            "missing_required_parameter", "Missing required parameter: 'session.type'.", "session.type"
        )
    if update["type"] != "realtime":
        raise ClientError("invalid_value", "Invalid value for 'session.type'.", "session.type")
    beta = sorted(BETA_SESSION_FIELDS & set(update))
    if beta:
        raise ClientError(
            "unknown_parameter", f"Unknown parameter: 'session.{beta[0]}'.", f"session.{beta[0]}"
        )
    merged = _merge(copy.deepcopy(session), update)
    for side in ("input", "output"):
        _check_format(merged["audio"][side]["format"], side)
    return merged


# A format or turn-detection object is one value, replaced whole by an update.
_ATOMIC = frozenset({"format", "turn_detection"})


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict) and key not in _ATOMIC:
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def _check_format(fmt: Any, side: str) -> None:
    param = f"session.audio.{side}.format"
    if not isinstance(fmt, dict) or fmt.get("type") not in {"audio/pcmu", "audio/pcm"}:
        raise ClientError("invalid_value", f"Invalid value for '{param}.type'.", f"{param}.type")
    if fmt["type"] == "audio/pcm" and fmt.get("rate") != 24000:
        raise ClientError(
            "missing_required_parameter", f"Missing required parameter: '{param}.rate'.", f"{param}.rate"
        )


def audio_format(fmt: dict[str, Any]) -> AudioFormat:
    return AudioFormat.PCMU if fmt.get("type") == "audio/pcmu" else AudioFormat.PCM24K


def text_of(item: dict[str, Any]) -> str:
    parts = item.get("content") or []
    return " ".join(str(part.get("text", "")) for part in parts if isinstance(part, dict))


def message_item(item_id: str, role: str, status: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    """A conversation message item as the server shows it."""
    return {"id": item_id, "object": "realtime.item", "type": "message", "role": role, "status": status,
            "content": content}  # fmt: skip


def function_call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {"id": item_id, "object": "realtime.item", "type": "function_call", "status": status,
            "call_id": call_id, "name": name, "arguments": arguments}  # fmt: skip


def part(response_id: str, item_id: str) -> dict[str, Any]:
    """The fields that place an audio event in its response: one item, one content part."""
    return {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
