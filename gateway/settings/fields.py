"""Settings: built-in defaults, then a TOML file, then environment variables.

The environment names are a contract (users and test harnesses set them). A bad or
missing setting stops start-up with one `ConfigError` line that names the setting as
the user wrote it (`GATEWAY_PORT`, or `[server] port` in the file). Secrets are held in
`Secret`, whose repr never shows the value, so a settings object can be logged whole.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import socket
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from actors.realtime import AudioFormat, SessionConfig, TurnDetection

# Used only when TWILIO_AUTH_TOKEN is unset and the gateway is reachable from this
# machine alone; the simulator signs with it by default. Never accepted elsewhere.
DEV_TWILIO_AUTH_TOKEN = "dev-twilio-auth-token"  # public by design, loopback only
DEV_TWILIO_ACCOUNT_SID = "AC" + "0" * 32
DEV_ADMIN_TOKEN = "dev-admin-token"  # public by design, loopback only, like the Twilio one

PROVIDERS = ("local", "openai", "azure-openai", "azure-voice-live")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")

DEFAULT_INSTRUCTIONS = (
    "You are a friendly voice assistant answering a phone call. Keep answers short and "
    "speak naturally. If the caller asks for something you cannot do, say so briefly."
)


class ConfigError(Exception):
    """A setting is missing or invalid; the message is one line that names it."""


class Secret:
    """A string that never shows itself in repr, str or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    __str__ = __repr__


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    public_url: str
    twilio_account_sid: str
    twilio_auth_token: Secret
    stream_token_key: Secret
    stream_token_ttl_s: float
    stream_start_timeout_s: float
    ai_provider: str
    ai_model: str
    ai_audio_format: AudioFormat
    ai_voice: str
    ai_instructions: str
    ai_greet_first: bool
    ai_connect_timeout_s: float
    ai_transcription_model: str
    ai_reconnect_attempts: int
    ai_reconnect_initial_ms: int
    ai_reconnect_max_ms: int
    ai_session_recycle_minutes: float
    ai_prewarm: bool
    ai_prewarm_seconds: float
    ai_prewarm_max: int
    vad_threshold: float
    vad_prefix_padding_ms: int
    vad_silence_duration_ms: int
    vad_create_response: bool
    vad_interrupt_response: bool
    openai_api_key: Secret
    openai_base_url: str
    azure_openai_endpoint: str
    azure_openai_api_key: Secret
    azure_voice_live_endpoint: str
    azure_voice_live_api_key: Secret
    azure_voice_live_api_version: str
    twilio_api_base_url: str
    playout_lead_ms: int
    playout_mark_interval_ms: int
    local_barge_in: bool
    local_barge_in_threshold_dbfs: float
    dtmf_to_ai: bool
    dtmf_triggers_response: bool
    dtmf_inter_digit_ms: int
    tools_end_call: bool
    tools_transfer_to: str
    tools_transfer_allowed: tuple[str, ...]
    local_agent_speed: float
    local_agent_drop_after_deltas: int
    local_agent_drops: int
    local_agent_expire_after_s: float
    local_agent_accept_delay_ms: int
    local_agent_read_delay_ms: int
    admin_token: Secret
    instance_id: str
    caller_id: str
    admin_heartbeat_s: float
    admin_idle_timeout_s: float
    admin_outbox_events: int
    admin_max_message_bytes: int
    registry_retention_s: float
    max_calls: int
    drain_seconds: float
    metrics_token: Secret
    log_level: str
    log_format: str
    log_phone_numbers: str

    def bound_to(self, port: int) -> Settings:
        """These settings once the listening socket is bound to `port` (which may differ when 0
        was asked for): a public URL that was not configured is derived from the real port."""
        if self.public_url:
            return replace(self, port=port)
        host = "127.0.0.1" if self.host in {"0.0.0.0", "::"} else self.host
        host = f"[{host}]" if ":" in host else host
        return replace(self, port=port, public_url=f"http://{host}:{port}")

    @property
    def stream_url(self) -> str:
        """The media WebSocket URL Twilio dials: the public URL with ws(s) and /twilio/media."""
        return websocket_url(self.public_url) + "/twilio/media"

    @property
    def development_mode(self) -> bool:
        """No Twilio auth token was given: only this machine may reach the gateway."""
        return self.twilio_auth_token.reveal() == DEV_TWILIO_AUTH_TOKEN

    def session_config(self) -> SessionConfig:
        return SessionConfig(
            model=self.ai_model,
            instructions=self.ai_instructions,
            voice=self.ai_voice,
            audio_format=self.ai_audio_format,
            turn_detection=TurnDetection(
                threshold=self.vad_threshold,
                prefix_padding_ms=self.vad_prefix_padding_ms,
                silence_duration_ms=self.vad_silence_duration_ms,
                create_response=self.vad_create_response,
                interrupt_response=self.vad_interrupt_response,
            ),
            transcription_model=self.ai_transcription_model,
        )

    def describe(self) -> dict[str, Any]:
        """Every setting for a start-up log line; secrets appear only as set/unset."""
        return {
            f.name: ("set" if getattr(self, f.name) else "unset")
            if isinstance(getattr(self, f.name), Secret)
            else getattr(self, f.name)
            for f in fields(self)
            if f.name != "ai_instructions"
        }


# ---- parsing -----------------------------------------------------------------------


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {value!r}")
    return value.strip()


def _nonempty(value: Any) -> str:
    text = _text(value)
    if not text:
        raise ValueError("must not be empty")
    return text


def _integer(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        text = str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
        if not text.lstrip("-").isdigit() or not low <= int(text) <= high:
            raise ValueError(f"must be an integer from {low} to {high}, got {value!r}")
        return int(text)

    return parse


def _number(low: float, high: float) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        try:
            number = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            number = math.nan
        if not low <= number <= high:
            raise ValueError(f"must be a number from {low} to {high}, got {value!r}")
        return number

    return parse


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"must be true or false, got {value!r}")


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _text(value).lower()
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}")
        return text

    return parse


def _http_url(value: Any) -> str:
    text = _text(value).rstrip("/")
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"must be an http:// or https:// URL, got {text!r}")
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query string or fragment")
    return text


def _account_sid(value: Any) -> str:
    text = _text(value)
    if text and not (text.startswith("AC") and len(text) == 34 and text[2:].isalnum()):
        raise ValueError("must look like AC followed by 32 characters")
    return text


def _e164_or_empty(value: Any) -> str:
    text = _text(value)
    if text and not _E164.fullmatch(text):
        raise ValueError(f"must be an E.164 phone number like +15551234567, got {text!r}")
    return text


def _e164_list(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError(f"must be a list of E.164 numbers, got {value!r}")
    return tuple(number for number in (_e164_or_empty(item) for item in items) if number)


def _secret(value: Any) -> Secret:
    return Secret(_text(value))


def _secret_key(minimum: int) -> Callable[[Any], Secret]:
    def parse(value: Any) -> Secret:
        text = _text(value)
        if text and len(text) < minimum:
            raise ValueError(f"must be at least {minimum} characters (e.g. `openssl rand -hex 32`)")
        return Secret(text)

    return parse


@dataclass(frozen=True)
class _Field:
    name: str
    env: str | None
    section: str
    key: str
    default: Any
    parse: Callable[[Any], Any]


_FIELDS = (
    _Field("host", "GATEWAY_HOST", "server", "host", "127.0.0.1", _nonempty),
    _Field("port", "GATEWAY_PORT", "server", "port", 8080, _integer(0, 65535)),
    _Field("public_url", "GATEWAY_PUBLIC_URL", "server", "public_url", "", _http_url),
    _Field("twilio_account_sid", "TWILIO_ACCOUNT_SID", "twilio", "account_sid", "", _account_sid),
    _Field("twilio_auth_token", "TWILIO_AUTH_TOKEN", "twilio", "auth_token", "", _secret),
    _Field("stream_token_key", "GATEWAY_STREAM_TOKEN_KEY", "twilio", "stream_token_key", "", _secret_key(32)),
    _Field("stream_token_ttl_s", None, "twilio", "stream_token_ttl_seconds", 30.0, _number(1, 600)),
    _Field("stream_start_timeout_s", None, "twilio", "stream_start_timeout_seconds", 10.0, _number(0.5, 60)),
    _Field("ai_provider", "GATEWAY_AI_PROVIDER", "ai", "provider", "local", _choice(*PROVIDERS)),
    _Field("ai_model", "GATEWAY_AI_MODEL", "ai", "model", "gpt-realtime", _nonempty),
    _Field(
        "ai_audio_format",
        "GATEWAY_AI_AUDIO_FORMAT",
        "ai",
        "audio_format",
        "pcmu",
        lambda v: AudioFormat(_choice("pcmu", "pcm24k")(v)),
    ),
    _Field("ai_voice", "GATEWAY_AI_VOICE", "ai", "voice", "marin", _nonempty),
    _Field("ai_instructions", "GATEWAY_AI_INSTRUCTIONS", "ai", "instructions", DEFAULT_INSTRUCTIONS, _text),
    _Field("ai_greet_first", "GATEWAY_AI_GREET_FIRST", "ai", "greet_first", True, _boolean),
    _Field("ai_connect_timeout_s", None, "ai", "connect_timeout_seconds", 10.0, _number(0.5, 120)),
    _Field(
        "ai_transcription_model", "GATEWAY_AI_TRANSCRIPTION_MODEL", "ai", "transcription_model", "auto", _text
    ),
    _Field("ai_reconnect_attempts", None, "ai", "reconnect_attempts", 4, _integer(0, 20)),
    _Field("ai_reconnect_initial_ms", None, "ai", "reconnect_initial_ms", 250, _integer(10, 10_000)),
    _Field("ai_reconnect_max_ms", None, "ai", "reconnect_max_ms", 4000, _integer(10, 60_000)),
    _Field(
        "ai_session_recycle_minutes",
        "GATEWAY_AI_SESSION_RECYCLE_MINUTES",
        "ai",
        "session_recycle_minutes",
        55.0,
        _number(0.05, 24 * 60),
    ),
    _Field("ai_prewarm", "GATEWAY_AI_PREWARM", "ai", "prewarm", True, _boolean),
    _Field("ai_prewarm_seconds", None, "ai", "prewarm_seconds", 20.0, _number(1, 120)),
    _Field("ai_prewarm_max", None, "ai", "prewarm_max", 100, _integer(0, 10_000)),
    _Field("vad_threshold", None, "ai.turn_detection", "threshold", 0.5, _number(0, 1)),
    _Field("vad_prefix_padding_ms", None, "ai.turn_detection", "prefix_padding_ms", 300, _integer(0, 5000)),
    _Field(
        "vad_silence_duration_ms", None, "ai.turn_detection", "silence_duration_ms", 500, _integer(100, 10000)
    ),
    _Field("vad_create_response", None, "ai.turn_detection", "create_response", True, _boolean),
    _Field("vad_interrupt_response", None, "ai.turn_detection", "interrupt_response", True, _boolean),
    _Field("openai_api_key", "OPENAI_API_KEY", "openai", "api_key", "", _secret),
    _Field(
        "openai_base_url", "OPENAI_BASE_URL", "openai", "base_url", "https://api.openai.com/v1", _http_url
    ),
    _Field("azure_openai_endpoint", "AZURE_OPENAI_ENDPOINT", "azure", "openai_endpoint", "", _http_url),
    _Field("azure_openai_api_key", "AZURE_OPENAI_API_KEY", "azure", "openai_api_key", "", _secret),
    _Field(
        "azure_voice_live_endpoint",
        "AZURE_VOICE_LIVE_ENDPOINT",
        "azure",
        "voice_live_endpoint",
        "",
        _http_url,
    ),
    _Field(
        "azure_voice_live_api_key", "AZURE_VOICE_LIVE_API_KEY", "azure", "voice_live_api_key", "", _secret
    ),
    _Field(
        "azure_voice_live_api_version",
        "AZURE_VOICE_LIVE_API_VERSION",
        "azure",
        "voice_live_api_version",
        "2026-07-15",
        _nonempty,
    ),
    _Field(
        "twilio_api_base_url",
        "TWILIO_API_BASE_URL",
        "twilio",
        "api_base_url",
        "https://api.twilio.com",
        _http_url,
    ),
    _Field("playout_lead_ms", "GATEWAY_PLAYOUT_LEAD_MS", "playout", "lead_ms", 100, _integer(20, 2000)),
    _Field("playout_mark_interval_ms", None, "playout", "mark_interval_ms", 100, _integer(20, 2000)),
    _Field("local_barge_in", "GATEWAY_LOCAL_BARGE_IN", "barge_in", "local_vad", False, _boolean),
    _Field(
        "local_barge_in_threshold_dbfs", None, "barge_in", "local_vad_threshold_dbfs", -35.0, _number(-90, 0)
    ),
    _Field("dtmf_to_ai", None, "dtmf", "to_ai", True, _boolean),
    _Field("dtmf_triggers_response", None, "dtmf", "triggers_response", True, _boolean),
    _Field("dtmf_inter_digit_ms", None, "dtmf", "inter_digit_ms", 1000, _integer(100, 10_000)),
    _Field("tools_end_call", None, "tools", "end_call", True, _boolean),
    _Field("tools_transfer_to", "GATEWAY_TRANSFER_TO", "tools", "transfer_to", "", _e164_or_empty),
    _Field("tools_transfer_allowed", None, "tools", "transfer_allowed", (), _e164_list),
    _Field("local_agent_speed", "GATEWAY_LOCAL_AGENT_SPEED", "local_agent", "speed", 4.0, _number(0.1, 1000)),
    _Field(
        "local_agent_drop_after_deltas",
        "GATEWAY_LOCAL_AGENT_DROP_AFTER_DELTAS",
        "local_agent",
        "drop_after_deltas",
        0,
        _integer(0, 1_000_000),
    ),
    _Field(
        "local_agent_drops", "GATEWAY_LOCAL_AGENT_DROPS", "local_agent", "drops", 1, _integer(0, 1_000_000)
    ),
    _Field(
        "local_agent_expire_after_s",
        "GATEWAY_LOCAL_AGENT_EXPIRE_AFTER_S",
        "local_agent",
        "expire_after_seconds",
        0.0,
        _number(0, 86_400),
    ),
    _Field(
        "local_agent_accept_delay_ms",
        "GATEWAY_LOCAL_AGENT_ACCEPT_DELAY_MS",
        "local_agent",
        "accept_delay_ms",
        0,
        _integer(0, 60_000),
    ),
    _Field(
        "local_agent_read_delay_ms",
        "GATEWAY_LOCAL_AGENT_READ_DELAY_MS",
        "local_agent",
        "read_delay_ms",
        0,
        _integer(0, 60_000),
    ),
    _Field("admin_token", "GATEWAY_ADMIN_TOKEN", "admin", "token", "", _secret),
    _Field("instance_id", "GATEWAY_INSTANCE_ID", "server", "instance_id", "", _text),
    _Field("caller_id", "GATEWAY_CALLER_ID", "admin", "caller_id", "", _e164_or_empty),
    _Field("admin_heartbeat_s", None, "admin", "heartbeat_seconds", 15.0, _number(1, 600)),
    _Field("admin_idle_timeout_s", None, "admin", "idle_timeout_seconds", 45.0, _number(2, 3600)),
    _Field("admin_outbox_events", None, "admin", "outbox_events", 256, _integer(8, 100_000)),
    _Field("admin_max_message_bytes", None, "admin", "max_message_bytes", 65536, _integer(1024, 1 << 24)),
    _Field(
        "registry_retention_s", None, "admin", "registry_retention_seconds", 3600.0, _number(0, 7 * 86400)
    ),
    _Field("max_calls", "GATEWAY_MAX_CALLS", "server", "max_calls", 100, _integer(1, 100_000)),
    _Field("drain_seconds", "GATEWAY_DRAIN_SECONDS", "server", "drain_seconds", 300.0, _number(0, 86_400)),
    _Field("metrics_token", "GATEWAY_METRICS_TOKEN", "metrics", "token", "", _secret),
    _Field(
        "log_level", "GATEWAY_LOG_LEVEL", "log", "level", "info", _choice("debug", "info", "warning", "error")
    ),
    _Field("log_format", "GATEWAY_LOG_FORMAT", "log", "format", "auto", _choice("auto", "json", "console")),
    _Field(
        "log_phone_numbers",
        "GATEWAY_LOG_PHONE_NUMBERS",
        "log",
        "phone_numbers",
        "masked",
        _choice("masked", "full"),
    ),
)


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from defaults, the TOML file at `path`, then `environ`."""
    environ = os.environ if environ is None else environ
    table = _read_toml(path) if path is not None else {}
    values: dict[str, Any] = {}
    for spec in _FIELDS:
        where, raw = _lookup(spec, table, environ, path)
        try:
            values[spec.name] = spec.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{where} {exc}") from None
    _reject_unknown_keys(table, path)
    return _complete(values, environ)


def _lookup(
    spec: _Field, table: Mapping[str, Any], environ: Mapping[str, str], path: Path | None
) -> tuple[str, Any]:
    if spec.env and environ.get(spec.env, "") != "":
        return spec.env, environ[spec.env]
    section: Any = table
    for part in spec.section.split("."):
        section = section.get(part, {}) if isinstance(section, dict) else {}
    if isinstance(section, dict) and spec.key in section:
        return f"{path} [{spec.section}] {spec.key}", section[spec.key]
    return spec.env or f"[{spec.section}] {spec.key}", spec.default


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from None


def _reject_unknown_keys(table: Mapping[str, Any], path: Path | None) -> None:
    known = {(spec.section, spec.key) for spec in _FIELDS}
    sections = {spec.section for spec in _FIELDS}

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for key, value in node.items():
            dotted = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict) and dotted in sections:
                walk(value, dotted)
            elif (prefix, key) not in known:
                raise ConfigError(f"{path} has an unknown setting [{prefix or '-'}] {key}")

    walk(table, "")


def _complete(values: dict[str, Any], environ: Mapping[str, str]) -> Settings:
    development = not values["twilio_auth_token"]  # and, as checked next, loopback only
    if development:
        public_host = urlsplit(values["public_url"]).hostname if values["public_url"] else values["host"]
        if not (is_loopback(values["host"]) and is_loopback(public_host)):
            raise ConfigError(
                "TWILIO_AUTH_TOKEN is required unless GATEWAY_HOST and GATEWAY_PUBLIC_URL are loopback "
                "(without it no webhook signature can be checked)"
            )
        values["twilio_auth_token"] = Secret(DEV_TWILIO_AUTH_TOKEN)
    if development and not values["admin_token"]:
        values["admin_token"] = Secret(DEV_ADMIN_TOKEN)
    if not values["instance_id"]:
        values["instance_id"] = f"{socket.gethostname()}-{os.getpid()}"
    _check_provider(values)
    if values["tools_transfer_to"] and not values["twilio_account_sid"]:
        raise ConfigError(
            "GATEWAY_TRANSFER_TO needs TWILIO_ACCOUNT_SID: transfers go through Twilio's REST API"
        )
    if values["ai_transcription_model"] == "auto":
        values["ai_transcription_model"] = _TRANSCRIPTION_DEFAULTS[values["ai_provider"]]
    return Settings(**values)


# Caller transcripts let a new AI session continue the conversation after a drop. Azure
# OpenAI wants the name of a transcription *deployment*, which only the user knows.
_TRANSCRIPTION_DEFAULTS = {
    "local": "loopback",
    "openai": "gpt-4o-mini-transcribe",
    "azure-openai": "",
    "azure-voice-live": "azure-speech",
}

_PROVIDER_NEEDS = {
    "openai": ("openai_api_key", "OPENAI_API_KEY"),
    "azure-openai": (
        "azure_openai_endpoint",
        "AZURE_OPENAI_ENDPOINT",
        "azure_openai_api_key",
        "AZURE_OPENAI_API_KEY",
    ),
    "azure-voice-live": (
        "azure_voice_live_endpoint",
        "AZURE_VOICE_LIVE_ENDPOINT",
        "azure_voice_live_api_key",
        "AZURE_VOICE_LIVE_API_KEY",
    ),
}


def _check_provider(values: dict[str, Any]) -> None:
    provider = values["ai_provider"]
    needs = _PROVIDER_NEEDS.get(provider, ())
    for name, env in zip(needs[::2], needs[1::2], strict=True):
        if not values[name]:
            raise ConfigError(f"{env} is required when GATEWAY_AI_PROVIDER={provider}")


def is_loopback(host: str | None) -> bool:
    if host in {"localhost", "ip6-localhost"}:
        return True
    try:
        return ipaddress.ip_address((host or "").strip("[]")).is_loopback
    except ValueError:
        return False


def websocket_url(http_url: str) -> str:
    """http -> ws, https -> wss, as Twilio (and the OpenAI SDK) expect."""
    scheme, rest = http_url.split("://", 1)
    return {"http": "ws", "https": "wss"}[scheme] + "://" + rest
