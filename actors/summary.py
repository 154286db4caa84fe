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
    extras: dict[str, Any]  # what the gateway adds: direction, masked numbers
    end: CallEnd
    audio_format: str
    frames_in: int
    frames_out: int
    drops: dict[str, int] = field(default_factory=dict)
    peak_depths: dict[str, int] = field(default_factory=dict)
    underruns: int = 0
    barge_ins: int = 0
    clears_sent: int = 0
    clear_latency_ms_max: float | None = None
    truncations: int = 0
    truncate_errors: int = 0
    stale_audio_discarded: int = 0
    marks_sent: int = 0
    marks_echoed: int = 0
    dtmf_digits: int = 0
    dtmf_entries: int = 0
    twilio_sequence_gaps: int = 0
    ai_sessions: int = 0
    ai_reconnects: int = 0
    ai_appends_sent: int = 0
    ai_deltas_received: int = 0
    ai_responses: int = 0
    ai_errors: int = 0
    ai_tool_calls: int = 0
    ai_usage: dict[str, int] = field(default_factory=dict)
    uplink_latency_ms: dict[str, Any] = field(default_factory=dict)  # caller frame in -> sent to the AI
    downlink_latency_ms: dict[str, Any] = field(default_factory=dict)  # AI delta in -> first frame out

    def log_fields(self) -> dict[str, Any]:
        """Flat fields for the `call.summary` log record."""
        skipped = {"end", "started_at", "extras"}
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__ if name not in skipped}
        fields.update(self.extras)
        fields["started_at"] = datetime.fromtimestamp(self.started_at, UTC).isoformat()
        fields["ended_at"] = datetime.fromtimestamp(self.started_at + self.duration_s, UTC).isoformat()
        fields["duration_s"] = round(self.duration_s, 3)
        fields["end_reason"] = self.end.reason.value
        fields["end_detail"] = self.end.detail
        fields["close_code"] = int(self.end.close_code)
        return fields
