"""Every setting: its name, environment variable, place in the TOML file, default and parser.

The environment names are a contract (users and test harnesses set them); so are the TOML
sections and keys (`config/default.toml` documents each, and a test keeps it so).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from actors.realtime import AudioFormat
from gateway.settings.parsers import (
    account_sid,
    boolean,
    choice,
    e164_list,
    e164_or_empty,
    http_url,
    integer,
    nonempty,
    number,
    redis_url,
    secret,
    secret_key,
    text,
)

PROVIDERS = ("local", "openai", "azure-openai", "azure-voice-live")

DEFAULT_INSTRUCTIONS = (
    "You are a friendly voice assistant answering a phone call. Keep answers short and "
    "speak naturally. If the caller asks for something you cannot do, say so briefly."
)


@dataclass(frozen=True)
class Field:
    name: str
    env: str | None
    section: str
    key: str
    default: Any
    parse: Callable[[Any], Any]


FIELDS = (
    Field("host", "GATEWAY_HOST", "server", "host", "127.0.0.1", nonempty),
    Field("port", "GATEWAY_PORT", "server", "port", 8080, integer(0, 65535)),
    Field("public_url", "GATEWAY_PUBLIC_URL", "server", "public_url", "", http_url),
    Field("twilio_account_sid", "TWILIO_ACCOUNT_SID", "twilio", "account_sid", "", account_sid),
    Field("twilio_auth_token", "TWILIO_AUTH_TOKEN", "twilio", "auth_token", "", secret),
    Field("stream_token_key", "GATEWAY_STREAM_TOKEN_KEY", "twilio", "stream_token_key", "", secret_key(32)),
    Field("stream_token_ttl_s", None, "twilio", "stream_token_ttl_seconds", 30.0, number(1, 600)),
    Field("stream_start_timeout_s", None, "twilio", "stream_start_timeout_seconds", 10.0, number(0.5, 60)),
    Field("twilio_silence_s", None, "twilio", "silence_seconds", 15.0, number(0.5, 3600)),
    Field("ai_provider", "GATEWAY_AI_PROVIDER", "ai", "provider", "local", choice(*PROVIDERS)),
    Field("ai_model", "GATEWAY_AI_MODEL", "ai", "model", "gpt-realtime", nonempty),
    Field(
        "ai_audio_format",
        "GATEWAY_AI_AUDIO_FORMAT",
        "ai",
        "audio_format",
        "pcmu",
        lambda v: AudioFormat(choice("pcmu", "pcm24k")(v)),
    ),
    Field("ai_voice", "GATEWAY_AI_VOICE", "ai", "voice", "marin", nonempty),
    Field("ai_instructions", "GATEWAY_AI_INSTRUCTIONS", "ai", "instructions", DEFAULT_INSTRUCTIONS, text),
    Field("ai_greet_first", "GATEWAY_AI_GREET_FIRST", "ai", "greet_first", True, boolean),
    Field("ai_connect_timeout_s", None, "ai", "connect_timeout_seconds", 10.0, number(0.5, 120)),
    Field("ai_ping_interval_s", None, "ai", "ping_interval_seconds", 10.0, number(0.1, 600)),
    Field("ai_silence_timeout_s", None, "ai", "silence_timeout_seconds", 30.0, number(0.2, 3600)),
    Field(
        "ai_transcription_model", "GATEWAY_AI_TRANSCRIPTION_MODEL", "ai", "transcription_model", "auto", text
    ),
    Field("ai_reconnect_attempts", None, "ai", "reconnect_attempts", 4, integer(0, 20)),
    Field("ai_reconnect_initial_ms", None, "ai", "reconnect_initial_ms", 250, integer(10, 10_000)),
    Field("ai_reconnect_max_ms", None, "ai", "reconnect_max_ms", 4000, integer(10, 60_000)),
    Field(
        "ai_session_recycle_minutes",
        "GATEWAY_AI_SESSION_RECYCLE_MINUTES",
        "ai",
        "session_recycle_minutes",
        55.0,
        number(0.05, 24 * 60),
    ),
    Field("ai_prewarm", "GATEWAY_AI_PREWARM", "ai", "prewarm", True, boolean),
    Field("ai_prewarm_seconds", None, "ai", "prewarm_seconds", 20.0, number(1, 120)),
    Field("ai_prewarm_max", None, "ai", "prewarm_max", 100, integer(0, 10_000)),
    Field("vad_threshold", None, "ai.turn_detection", "threshold", 0.5, number(0, 1)),
    Field("vad_prefix_padding_ms", None, "ai.turn_detection", "prefix_padding_ms", 300, integer(0, 5000)),
    Field(
        "vad_silence_duration_ms", None, "ai.turn_detection", "silence_duration_ms", 500, integer(100, 10000)
    ),
    Field("vad_create_response", None, "ai.turn_detection", "create_response", True, boolean),
    Field("vad_interrupt_response", None, "ai.turn_detection", "interrupt_response", True, boolean),
    Field("openai_api_key", "OPENAI_API_KEY", "openai", "api_key", "", secret),
    Field("openai_base_url", "OPENAI_BASE_URL", "openai", "base_url", "https://api.openai.com/v1", http_url),
    Field("azure_openai_endpoint", "AZURE_OPENAI_ENDPOINT", "azure", "openai_endpoint", "", http_url),
    Field("azure_openai_api_key", "AZURE_OPENAI_API_KEY", "azure", "openai_api_key", "", secret),
    Field(
        "azure_voice_live_endpoint",
        "AZURE_VOICE_LIVE_ENDPOINT",
        "azure",
        "voice_live_endpoint",
        "",
        http_url,
    ),
    Field("azure_voice_live_api_key", "AZURE_VOICE_LIVE_API_KEY", "azure", "voice_live_api_key", "", secret),
    Field(
        "azure_voice_live_api_version",
        "AZURE_VOICE_LIVE_API_VERSION",
        "azure",
        "voice_live_api_version",
        "2026-07-15",
        nonempty,
    ),
    Field(
        "twilio_api_base_url",
        "TWILIO_API_BASE_URL",
        "twilio",
        "api_base_url",
        "https://api.twilio.com",
        http_url,
    ),
    Field("playout_lead_ms", "GATEWAY_PLAYOUT_LEAD_MS", "playout", "lead_ms", 100, integer(20, 2000)),
    Field("playout_mark_interval_ms", None, "playout", "mark_interval_ms", 100, integer(20, 2000)),
    Field("local_barge_in", "GATEWAY_LOCAL_BARGE_IN", "barge_in", "local_vad", False, boolean),
    Field(
        "local_barge_in_threshold_dbfs", None, "barge_in", "local_vad_threshold_dbfs", -35.0, number(-90, 0)
    ),
    Field("dtmf_to_ai", None, "dtmf", "to_ai", True, boolean),
    Field("dtmf_triggers_response", None, "dtmf", "triggers_response", True, boolean),
    Field("dtmf_inter_digit_ms", None, "dtmf", "inter_digit_ms", 1000, integer(100, 10_000)),
    Field("tools_end_call", None, "tools", "end_call", True, boolean),
    Field("tools_transfer_to", "GATEWAY_TRANSFER_TO", "tools", "transfer_to", "", e164_or_empty),
    Field("tools_transfer_allowed", None, "tools", "transfer_allowed", (), e164_list),
    Field("local_agent_speed", "GATEWAY_LOCAL_AGENT_SPEED", "local_agent", "speed", 4.0, number(0.1, 1000)),
    Field(
        "local_agent_drop_after_deltas",
        "GATEWAY_LOCAL_AGENT_DROP_AFTER_DELTAS",
        "local_agent",
        "drop_after_deltas",
        0,
        integer(0, 1_000_000),
    ),
    Field("local_agent_drops", "GATEWAY_LOCAL_AGENT_DROPS", "local_agent", "drops", 1, integer(0, 1_000_000)),
    Field(
        "local_agent_expire_after_s",
        "GATEWAY_LOCAL_AGENT_EXPIRE_AFTER_S",
        "local_agent",
        "expire_after_seconds",
        0.0,
        number(0, 86_400),
    ),
    Field(
        "local_agent_accept_delay_ms",
        "GATEWAY_LOCAL_AGENT_ACCEPT_DELAY_MS",
        "local_agent",
        "accept_delay_ms",
        0,
        integer(0, 60_000),
    ),
    Field(
        "local_agent_read_delay_ms",
        "GATEWAY_LOCAL_AGENT_READ_DELAY_MS",
        "local_agent",
        "read_delay_ms",
        0,
        integer(0, 60_000),
    ),
    Field("admin_token", "GATEWAY_ADMIN_TOKEN", "admin", "token", "", secret),
    Field("instance_id", "GATEWAY_INSTANCE_ID", "server", "instance_id", "", text),
    Field("caller_id", "GATEWAY_CALLER_ID", "admin", "caller_id", "", e164_or_empty),
    Field("admin_heartbeat_s", None, "admin", "heartbeat_seconds", 15.0, number(1, 600)),
    Field("admin_idle_timeout_s", None, "admin", "idle_timeout_seconds", 45.0, number(2, 3600)),
    Field("admin_outbox_events", None, "admin", "outbox_events", 256, integer(8, 100_000)),
    Field("admin_max_message_bytes", None, "admin", "max_message_bytes", 65536, integer(1024, 1 << 24)),
    Field("registry_retention_s", None, "admin", "registry_retention_seconds", 3600.0, number(0, 7 * 86400)),
    Field("redis_url", "GATEWAY_REDIS_URL", "fleet", "redis_url", "", redis_url),
    Field("fleet_heartbeat_s", None, "fleet", "heartbeat_seconds", 2.0, number(0.1, 60)),
    Field("fleet_command_timeout_s", None, "fleet", "command_timeout_seconds", 5.0, number(0.1, 120)),
    Field("fleet_move_deadline_s", None, "fleet", "move_deadline_seconds", 20.0, number(0, 3600)),
    Field("max_calls", "GATEWAY_MAX_CALLS", "server", "max_calls", 100, integer(1, 100_000)),
    Field("drain_seconds", "GATEWAY_DRAIN_SECONDS", "server", "drain_seconds", 300.0, number(0, 86_400)),
    Field("max_connections", None, "server", "max_connections", 4096, integer(16, 1_000_000)),
    Field("max_loop_lag_ms", "GATEWAY_MAX_LOOP_LAG_MS", "server", "max_loop_lag_ms", 50.0, number(0, 10_000)),
    Field("max_cpu_share", "GATEWAY_MAX_CPU_SHARE", "server", "max_cpu_share", 0.95, number(0, 1)),
    Field(
        "max_pending_per_peer", None, "server", "max_pending_connections_per_peer", 256, integer(0, 1_000_000)
    ),
    Field("metrics_token", "GATEWAY_METRICS_TOKEN", "metrics", "token", "", secret),
    Field(
        "log_level", "GATEWAY_LOG_LEVEL", "log", "level", "info", choice("debug", "info", "warning", "error")
    ),
    Field("log_format", "GATEWAY_LOG_FORMAT", "log", "format", "auto", choice("auto", "json", "console")),
    Field(
        "log_phone_numbers",
        "GATEWAY_LOG_PHONE_NUMBERS",
        "log",
        "phone_numbers",
        "masked",
        choice("masked", "full"),
    ),
    Field(
        "log_buffer_bytes", "GATEWAY_LOG_BUFFER_BYTES", "log", "buffer_bytes", 4 << 20, integer(4096, 1 << 30)
    ),
)
