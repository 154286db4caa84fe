"""Client events of the realtime protocol: each function returns one event's JSON text."""

from __future__ import annotations

import binascii

import orjson

from actors.realtime.session import Dialect

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
