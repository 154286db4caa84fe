"""Settings: defaults, the TOML file, environment overrides, one clear line per bad setting."""

import dataclasses
import tomllib
from pathlib import Path

import pytest

from actors.realtime import AudioFormat
from gateway.settings import DEV_TWILIO_AUTH_TOKEN, ConfigError, load_settings
from gateway.settings.fields import FIELDS

REPO = Path(__file__).parents[2]


def test_shipped_default_file_matches_the_built_in_defaults():
    """config/default.toml documents exactly the defaults the code uses."""
    assert load_settings(REPO / "config" / "default.toml", {}) == load_settings(None, {})


def test_shipped_default_file_documents_every_setting():
    """Every setting the code knows appears in config/default.toml, so the file is the reference."""
    table = tomllib.loads((REPO / "config" / "default.toml").read_text())
    missing = []
    for spec in FIELDS:
        section = table
        for part in spec.section.split("."):
            section = section.get(part, {})
        if spec.key not in section:
            missing.append(f"[{spec.section}] {spec.key}")
    assert missing == []


def test_defaults_run_locally_without_any_account():
    """With nothing set: loopback, port 8080, local agent, G.711 passthrough, dev Twilio token."""
    settings = load_settings(None, {}).bound_to(8080)
    assert (settings.host, settings.port, settings.ai_provider) == ("127.0.0.1", 8080, "local")
    assert settings.ai_audio_format is AudioFormat.PCMU
    assert settings.public_url == "http://127.0.0.1:8080"
    assert settings.stream_url == "ws://127.0.0.1:8080/twilio/media"
    assert settings.development_mode


def test_environment_overrides_the_file(tmp_path):
    """Every contract variable overrides the TOML value."""
    file = tmp_path / "gw.toml"
    file.write_text('[server]\nport = 9000\n[ai]\naudio_format = "pcmu"\n')
    env = {
        "GATEWAY_HOST": "0.0.0.0",
        "GATEWAY_PORT": "9100",
        "GATEWAY_PUBLIC_URL": "https://gw.example.com/",
        "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
        "TWILIO_AUTH_TOKEN": "tok",
        "GATEWAY_AI_PROVIDER": "openai",
        "OPENAI_API_KEY": "sk-x",
        "OPENAI_BASE_URL": "https://proxy.example.com/v1",
        "GATEWAY_AI_MODEL": "gpt-realtime-mini",
        "GATEWAY_AI_AUDIO_FORMAT": "pcm24k",
    }
    settings = load_settings(file, env)
    assert settings.port == 9100
    assert settings.public_url == "https://gw.example.com"
    assert settings.stream_url == "wss://gw.example.com/twilio/media"
    assert settings.ai_audio_format is AudioFormat.PCM24K
    assert settings.openai_base_url == "https://proxy.example.com/v1"
    assert settings.openai_api_key.reveal() == "sk-x"
    assert not settings.development_mode


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GATEWAY_PORT": "eighty"}, "GATEWAY_PORT must be an integer"),
        ({"GATEWAY_PORT": "70000"}, "GATEWAY_PORT must be an integer from 0 to 65535"),
        ({"GATEWAY_AI_PROVIDER": "gemini"}, "GATEWAY_AI_PROVIDER must be one of local, openai"),
        ({"GATEWAY_AI_AUDIO_FORMAT": "pcm16"}, "GATEWAY_AI_AUDIO_FORMAT must be one of pcmu, pcm24k"),
        ({"GATEWAY_PUBLIC_URL": "gw.example.com"}, "GATEWAY_PUBLIC_URL must be an http:// or https:// URL"),
        ({"GATEWAY_PUBLIC_URL": "https://gw.example.com/?x=1"}, "GATEWAY_PUBLIC_URL must not carry a query"),
        ({"TWILIO_ACCOUNT_SID": "ACshort"}, "TWILIO_ACCOUNT_SID must look like AC"),
        ({"GATEWAY_AI_PROVIDER": "openai"}, "OPENAI_API_KEY is required when GATEWAY_AI_PROVIDER=openai"),
        ({"GATEWAY_HOST": "0.0.0.0"}, "TWILIO_AUTH_TOKEN is required unless"),
        ({"GATEWAY_PUBLIC_URL": "https://x.ngrok.app"}, "TWILIO_AUTH_TOKEN is required unless"),
        ({"GATEWAY_LOG_LEVEL": "loud"}, "GATEWAY_LOG_LEVEL must be one of"),
        ({"GATEWAY_STREAM_TOKEN_KEY": "short"}, "GATEWAY_STREAM_TOKEN_KEY must be at least 32 characters"),
        ({"GATEWAY_MAX_CALLS": "0"}, "GATEWAY_MAX_CALLS must be an integer from 1 to 100000"),
        ({"GATEWAY_MAX_CALLS": "lots"}, "GATEWAY_MAX_CALLS must be an integer"),
        ({"GATEWAY_DRAIN_SECONDS": "-1"}, "GATEWAY_DRAIN_SECONDS must be a number from 0"),
        ({"GATEWAY_DRAIN_SECONDS": "soon"}, "GATEWAY_DRAIN_SECONDS must be a number"),
        ({"GATEWAY_LOG_PHONE_NUMBERS": "some"}, "GATEWAY_LOG_PHONE_NUMBERS must be one of masked, full"),
    ],
)
def test_bad_settings_stop_start_up_with_one_line_naming_them(env, message):
    """Each bad or missing setting raises ConfigError with a single line that names it."""
    with pytest.raises(ConfigError) as info:
        load_settings(None, env)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_values_in_the_file_name_the_file_and_key(tmp_path):
    """A bad value in the TOML file is reported with the file, the section and the key."""
    file = tmp_path / "gw.toml"
    file.write_text("[ai.turn_detection]\nsilence_duration_ms = 5\n")
    with pytest.raises(ConfigError, match=r"\[ai.turn_detection\] silence_duration_ms must be an integer"):
        load_settings(file, {})


def test_unknown_keys_in_the_file_are_refused(tmp_path):
    """A misspelt setting is an error, not silently ignored."""
    file = tmp_path / "gw.toml"
    file.write_text("[server]\nprot = 1\n")
    with pytest.raises(ConfigError, match=r"unknown setting \[server\] prot"):
        load_settings(file, {})


def test_missing_or_broken_files_are_one_line_errors(tmp_path):
    """A missing file or invalid TOML is reported as such."""
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", {})
    broken = tmp_path / "broken.toml"
    broken.write_text("[server\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(broken, {})


def test_secrets_never_show_in_repr_or_description():
    """Printing or logging the settings reveals neither the auth token nor the API key."""
    env = {
        "TWILIO_AUTH_TOKEN": "tw-secret-123",
        "OPENAI_API_KEY": "sk-secret-456",
        "GATEWAY_AI_PROVIDER": "openai",
        "GATEWAY_METRICS_TOKEN": "scrape-secret-789",
        "GATEWAY_STREAM_TOKEN_KEY": "stream-key-secret-" + "0" * 32,
    }
    settings = load_settings(None, env)
    for text in (repr(settings), str(settings.describe()), str(dataclasses.asdict(settings))):
        assert "tw-secret-123" not in text
        assert "sk-secret-456" not in text
        assert "scrape-secret-789" not in text
        assert "stream-key-secret" not in text


def test_development_token_is_used_only_on_loopback():
    """Without TWILIO_AUTH_TOKEN the development token applies, loopback only."""
    assert load_settings(None, {}).twilio_auth_token.reveal() == DEV_TWILIO_AUTH_TOKEN
    assert load_settings(None, {"GATEWAY_HOST": "::1"}).development_mode
