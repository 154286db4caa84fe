"""From the gateway's settings to one call's settings (computed once, shared by every call)."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from actors.ai_state import AISettings
from actors.formats import convert
from actors.realtime import AudioFormat, Dialect
from actors.supervisor import CallSettings
from actors.tools import ToolPolicy
from gateway.settings import Settings


@cache
def apology_ulaw() -> bytes:
    """ "Sorry, the assistant is unavailable..." as mu-law 8 kHz (ops/tools/make_clips.sh)."""
    return files("gateway.ai").joinpath("clips/apology.ulaw").read_bytes()


def call_settings(settings: Settings, dialect: Dialect) -> CallSettings:
    audio_format = settings.ai_audio_format
    tools = ToolPolicy(
        end_call=settings.tools_end_call,
        transfer_to=settings.tools_transfer_to,
        transfer_allowed=frozenset(settings.tools_transfer_allowed),
    )
    ai = AISettings(
        config=settings.session_config(),
        dialect=dialect,
        greet_first=settings.ai_greet_first,
        tools=tools,
        dtmf_to_ai=settings.dtmf_to_ai,
        dtmf_triggers_response=settings.dtmf_triggers_response,
        reconnect_attempts=settings.ai_reconnect_attempts,
        reconnect_initial_s=settings.ai_reconnect_initial_ms / 1000,
        reconnect_max_s=settings.ai_reconnect_max_ms / 1000,
        recycle_after_s=settings.ai_session_recycle_minutes * 60,
        ping_interval_s=settings.ai_ping_interval_s,
        silence_timeout_s=settings.ai_silence_timeout_s,
        apology=convert(apology_ulaw(), AudioFormat.PCMU, audio_format),
    )
    return CallSettings(
        ai=ai,
        playout_lead_ms=settings.playout_lead_ms,
        mark_interval_ms=settings.playout_mark_interval_ms,
        local_barge_in=settings.local_barge_in,
        local_vad_threshold_db=settings.local_barge_in_threshold_dbfs,
        dtmf_inter_digit_ms=settings.dtmf_inter_digit_ms,
        twilio_silence_s=settings.twilio_silence_s,
    )
