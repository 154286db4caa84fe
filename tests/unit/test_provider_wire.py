"""Golden files pin each provider's wire messages: the handshake and the client events.

Regenerate after a deliberate change with UPDATE_GOLDEN=1 and review the diff.
"""

import json
import os
from pathlib import Path

import pytest

from actors import realtime
from actors.realtime import AudioFormat, Dialect, SessionConfig, TurnDetection
from actors.tools import ToolPolicy
from gateway.ai.endpoints import RealtimeEndpoint
from gateway.settings import Secret

GOLDEN = Path(__file__).parent.parent / "golden"
CONFIG = SessionConfig(
    model="gpt-realtime",
    instructions="You answer the phone.",
    voice="marin",
    audio_format=AudioFormat.PCMU,
    turn_detection=TurnDetection(),
    transcription_model="gpt-4o-mini-transcribe",
    tools=tuple(ToolPolicy(transfer_to="+15550001111").definitions()),
)

PROVIDERS = {
    "openai": (RealtimeEndpoint.openai("https://api.openai.com/v1", "gpt-realtime", Secret("KEY")), CONFIG),
    "azure_openai": (
        RealtimeEndpoint.azure_openai("https://res.openai.azure.com", "my-deployment", Secret("KEY")),
        CONFIG,
    ),
    "azure_voice_live": (
        RealtimeEndpoint.azure_voice_live(
            "https://res.services.ai.azure.com", "2026-07-15", "gpt-realtime", Secret("KEY")
        ),
        SessionConfig(
            model="gpt-realtime",
            instructions="You answer the phone.",
            voice="en-US-Ava:DragonHDLatestNeural",
            audio_format=AudioFormat.PCMU,
            transcription_model="azure-speech",
            tools=CONFIG.tools,
        ),
    ),
}


def wire(endpoint: RealtimeEndpoint, config: SessionConfig) -> dict:
    dialect = endpoint.dialect
    headers = {name.decode(): value.decode() for name, value in endpoint.headers()}
    pcm = SessionConfig(config.model, "", config.voice, AudioFormat.PCM24K)
    keys = "The caller pressed 1 on the phone keypad."
    return {
        "handshake": {"url": endpoint.url, "headers": headers},
        "session.update": json.loads(realtime.session_update(config, dialect)),
        "session.update pcm24k": json.loads(realtime.session_update(pcm, dialect)),
        "assistant text item": json.loads(realtime.text_item("assistant", "We open at nine.", dialect)),
        "user text item": json.loads(realtime.text_item("user", keys, dialect)),
        "function_call_output": json.loads(realtime.function_call_output("call_1", '{"ok":true}')),
        "truncate": json.loads(realtime.item_truncate("item_1", 0, 1840)),
        "append": json.loads(realtime.input_audio_append(b"\xff\x7f")),
    }


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_wire_messages_match_the_golden_file(provider):
    """Each provider's handshake and client events are exactly what was reviewed."""
    actual = wire(*PROVIDERS[provider])
    path = GOLDEN / f"{provider}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(actual, indent=2, sort_keys=True) + "\n")
    assert actual == json.loads(path.read_text())


def test_no_provider_ever_sends_the_beta_header():
    """OpenAI-Beta selects the protocol OpenAI switched off; no handshake carries it."""
    for endpoint, _ in PROVIDERS.values():
        assert all(name.lower() != b"openai-beta" for name, _ in endpoint.headers())


def test_voice_live_speaks_the_beta_session_shape_with_azure_fields():
    """Voice Live gets flat g711_ulaw formats, its own VAD defaults set explicitly, auto_truncate off."""
    session = wire(*PROVIDERS["azure_voice_live"])["session.update"]["session"]
    assert (session["input_audio_format"], session["output_audio_format"]) == ("g711_ulaw", "g711_ulaw")
    assert session["input_audio_sampling_rate"] == 8000
    assert session["turn_detection"]["create_response"] is True
    assert session["turn_detection"]["interrupt_response"] is True
    assert session["turn_detection"]["auto_truncate"] is False
    assert session["voice"] == {"type": "azure-standard", "name": "en-US-Ava:DragonHDLatestNeural"}
    assert "type" not in session  # the GA-only field
    assert Dialect.VOICE_LIVE is PROVIDERS["azure_voice_live"][0].dialect
