"""The one record every call ends with: who, how long, why it ended, what was lost."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from actors.messages import CallEnd


@dataclass(frozen=True, slots=True)
class CallSummary:
    call_sid: str
    stream_sid: str
    account_sid: str
    started_at: float  # Unix time
    duration_s: float
    end: CallEnd
    audio_format: str
    frames_in: int
    frames_out: int
    drops: dict[str, int] = field(default_factory=dict)
    peak_depths: dict[str, int] = field(default_factory=dict)
    barge_ins: int = 0
    clears_sent: int = 0
    stale_audio_discarded: int = 0
    marks_sent: int = 0
    marks_echoed: int = 0
    dtmf_digits: int = 0
    twilio_sequence_gaps: int = 0
    ai_appends_sent: int = 0
    ai_deltas_received: int = 0
    ai_responses: int = 0
    ai_errors: int = 0
    ai_usage: dict[str, int] = field(default_factory=dict)

    def log_fields(self) -> dict[str, Any]:
        """Flat fields for the `call.summary` log record."""
        return {
            "call_sid": self.call_sid,
            "stream_sid": self.stream_sid,
            "account_sid": self.account_sid,
            "started_at": datetime.fromtimestamp(self.started_at, UTC).isoformat(),
            "duration_s": round(self.duration_s, 3),
            "end_reason": self.end.reason.value,
            "end_detail": self.end.detail,
            "close_code": int(self.end.close_code),
            "audio_format": self.audio_format,
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "drops": self.drops,
            "peak_depths": self.peak_depths,
            "barge_ins": self.barge_ins,
            "clears_sent": self.clears_sent,
            "stale_audio_discarded": self.stale_audio_discarded,
            "marks_sent": self.marks_sent,
            "marks_echoed": self.marks_echoed,
            "dtmf_digits": self.dtmf_digits,
            "twilio_sequence_gaps": self.twilio_sequence_gaps,
            "ai_appends_sent": self.ai_appends_sent,
            "ai_deltas_received": self.ai_deltas_received,
            "ai_responses": self.ai_responses,
            "ai_errors": self.ai_errors,
            "ai_usage": self.ai_usage,
        }
