"""The settings one process runs with: a frozen record, and what follows from it.

Development mode: without TWILIO_AUTH_TOKEN the gateway signs and checks with a public
development token, and only on loopback (`gateway.settings.loading` enforces that).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from actors.realtime import AudioFormat, SessionConfig, TurnDetection
from gateway.settings.secret import Secret

# Used only when TWILIO_AUTH_TOKEN is unset and the gateway is reachable from this
# machine alone; the simulator signs with it by default. Never accepted elsewhere.
DEV_TWILIO_AUTH_TOKEN = "dev-twilio-auth-token"  # public by design, loopback only
DEV_TWILIO_ACCOUNT_SID = "AC" + "0" * 32
DEV_ADMIN_TOKEN = "dev-admin-token"  # public by design, loopback only, like the Twilio one


class ConfigError(Exception):
    """A setting is missing or invalid; the message is one line that names it."""


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
    twilio_silence_s: float
    ai_provider: str
    ai_model: str
    ai_audio_format: AudioFormat
    ai_voice: str
    ai_instructions: str
    ai_greet_first: bool
    ai_connect_timeout_s: float
    ai_ping_interval_s: float
    ai_silence_timeout_s: float
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
    redis_url: Secret  # may carry a password
    fleet_heartbeat_s: float
    fleet_command_timeout_s: float
    fleet_move_deadline_s: float
    max_calls: int
    drain_seconds: float
    max_connections: int
    max_loop_lag_ms: float
    max_cpu_share: float
    max_pending_per_peer: int
    metrics_token: Secret
    log_level: str
    log_format: str
    log_phone_numbers: str
    log_buffer_bytes: int

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


def websocket_url(http_url: str) -> str:
    """http -> ws, https -> wss, as Twilio (and the OpenAI SDK) expect."""
    scheme, rest = http_url.split("://", 1)
    return {"http": "ws", "https": "wss"}[scheme] + "://" + rest
