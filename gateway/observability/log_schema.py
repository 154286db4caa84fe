"""The log event schema: every event the gateway writes, its level and its fields.

Log lines are an interface: a pipeline parses them, dashboards and alerts key on event
names and fields. This table is the single source of that contract. From it come the
JSON Schema (`docs/log-events.schema.json`) and the Markdown reference
(`docs/log-events.md`) committed in the repo; tests check that the committed files match
the table, that every `log.<level>("event", field=...)` call in the code is in it, and
that every line of a real end-to-end call validates against it.

Field types: `str`, `int`, `num`, `bool`, `obj`, `list`; a trailing `?` allows null.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

_TYPES: dict[str, Any] = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "num": {"type": "number"},
    "bool": {"type": "boolean"},
    "obj": {"type": "object"},
    "list": {"type": "array"},
}

# On every line. `instance` names the process; the call context is bound once per call.
BASE_FIELDS: dict[str, tuple[str, str]] = {
    "event": ("str", "the event name (for library records: their message)"),
    "level": ("str", "debug, info, warning or error"),
    "timestamp": ("str", "ISO 8601, UTC"),
    "instance": ("str", "the gateway process (GATEWAY_INSTANCE_ID, default host-pid)"),
}
CONTEXT_FIELDS: dict[str, tuple[str, str]] = {
    "call_sid": ("str", "the Twilio CallSid, on every line written for a call"),
    "stream_sid": ("str", "the Twilio StreamSid, on every line written by a call's actors"),
    "actor": (
        "str",
        "the actor that wrote the line: twilio_reader, codec_worker, ai_session, downlink_writer, keypad",
    ),
}
EXCEPTION_FIELD = ("list", "the traceback as structured frames (structlog dict_tracebacks)")


@dataclass(frozen=True)
class EventSpec:
    level: str
    description: str
    fields: dict[str, tuple[str, str]] = field(default_factory=dict)
    required: tuple[str, ...] | None = None  # None: every field in `fields`
    context: tuple[str, ...] = ()  # call context fields always present
    exception: bool = False

    @property
    def required_fields(self) -> tuple[str, ...]:
        own = tuple(self.fields) if self.required is None else self.required
        return (*self.context, *own, *(("exception",) if self.exception else ()))


# Written by an actor inside a call: the whole call context is bound.
IN_ACTOR = ("call_sid", "stream_sid", "actor")
IN_CALL = ("call_sid", "stream_sid")


_LATENCY = "p50, p99, max (ms, 50 us buckets below 5 ms) and samples"

EVENTS: dict[str, EventSpec] = {
    # ---- the process ---------------------------------------------------------------
    "log.dropped": EventSpec(
        "warning",
        "Log lines were dropped because stdout did not keep up; the calls did not wait for it.",
        {"dropped": ("int", "lines dropped since the last such line")},
    ),
    "gateway.started": EventSpec(
        "info",
        "The gateway listens; every setting, secrets only as set/unset.",
        {
            "listen": ("str", "host:port bound"),
            "voice_webhook": ("str", "the URL to set as a Twilio number's Voice URL"),
            "stream_url": ("str", "the media WebSocket URL given to Twilio"),
            "ai_endpoint": ("str", "the realtime AI WebSocket URL (no credentials)"),
            "settings": ("obj", "every setting by name"),
        },
        required=("listen", "voice_webhook", "stream_url", "ai_endpoint", "settings"),
    ),
    "gateway.development_mode": EventSpec(
        "warning",
        "TWILIO_AUTH_TOKEN is unset: development tokens, loopback only.",
        {"detail": ("str", "what that means")},
        required=("detail",),
    ),
    "gateway.signal": EventSpec(
        "info",
        "SIGTERM or SIGINT: the first drains, the next ends calls now (a repeat within 1 s is ignored).",
        {"signal": ("str", "SIGTERM or SIGINT"), "action": ("str", "drain, end_calls or ignored_repeat")},
        required=("signal", "action"),
    ),
    "gateway.draining": EventSpec(
        "info",
        "The gateway stopped taking calls (readiness off) and waits for live calls to end.",
        {
            "live_calls": ("int", "calls still running"),
            "deadline_s": ("num?", "seconds until the remaining calls are ended (null: no deadline)"),
            "trigger": ("str", "signal or operator"),
        },
        required=("live_calls", "trigger"),
    ),
    "gateway.drain_deadline": EventSpec(
        "warning",
        "The drain deadline passed (or a second signal came) with calls live: "
        "each is ended now (1001, summary).",
        {"live_calls": ("int", "calls being ended"), "cause": ("str", "deadline or second_signal")},
    ),
    "gateway.stopping": EventSpec(
        "info",
        "Shutting down: remaining calls are ended with 1001 and their summaries.",
        {"live_calls": ("int", "calls still running")},
        required=("live_calls",),
    ),
    "gateway.stopped": EventSpec("info", "The process is about to exit."),
    # ---- the control plane ---------------------------------------------------------
    "webhook.rejected": EventSpec(
        "warning",
        "A Twilio webhook was refused (bad or missing signature, malformed CallSid, wrong account).",
        {
            "path": ("str", "request path"),
            "reason": ("str", "why, in words"),
            "client": ("str?", "peer address"),
        },
        required=("path", "reason"),
    ),
    "call.webhook": EventSpec(
        "info",
        "A signed voice webhook was answered with a stream to this gateway.",
        {"direction": ("str", "Twilio's Direction field (inbound, outbound-api...)")},
        context=("call_sid",),
    ),
    "call.resume": EventSpec(
        "info",
        "Twilio asked what follows a stream that ended (the <Connect action>): a new stream if "
        "the call is being moved, else a hang-up.",
        {"moving": ("bool", "a new stream was answered")},
        context=("call_sid",),
    ),
    "call.declined": EventSpec(
        "info",
        "A call was answered with a polite refusal instead of a stream.",
        {
            "reason": ("str", "draining or at_capacity"),
            "in_flight": ("int", "calls live or connecting at the time"),
            "max_calls": ("int", "GATEWAY_MAX_CALLS"),
        },
        required=("reason",),
        context=("call_sid",),
    ),
    "call.status": EventSpec(
        "info",
        "A Twilio status callback (initiated, ringing, in-progress, completed...).",
        {"status": ("str", "Twilio's CallStatus")},
        context=("call_sid",),
    ),
    "call.originated": EventSpec(
        "info", "An outbound call was placed through Twilio REST.", context=("call_sid",)
    ),
    "call.operator_hang_up": EventSpec("info", "An operator hung a call up.", context=("call_sid",)),
    "call.operator_transfer": EventSpec("info", "An operator transferred a call.", context=("call_sid",)),
    "twilio.retrying": EventSpec(
        "warning",
        "A Twilio REST request failed with 429 or 5xx and is retried.",
        {
            "path": ("str", "request path"),
            "attempt": ("int", "1 for the first retry"),
            "error": ("str", "what failed"),
        },
    ),
    "twilio.request_failed": EventSpec(
        "warning",
        "Twilio REST refused a request.",
        {
            "url": ("str", "request URL"),
            "status": ("int", "HTTP status"),
            "code": ("int?", "Twilio error code"),
            "message": ("str", "Twilio's message"),
        },
    ),
    "twilio.call_already_ended": EventSpec(
        "info",
        "Hanging up or redirecting found the call already over (Twilio 20404 or 21220).",
        {"code": ("int", "Twilio error code")},
        context=("call_sid",),
    ),
    # ---- the media plane -----------------------------------------------------------
    "connection.crashed": EventSpec(
        "error",
        "Serving one connection raised: that connection is closed, nothing else notices.",
        {"client": ("str", "peer address"), "error": ("str", "the first error raised, as type: message")},
        exception=True,
    ),
    "front_door.accept_failed": EventSpec(
        "warning",
        "accept() failed for lack of a kernel resource (file descriptors, buffers); retried shortly.",
        {"error": ("str", "the OS error"), "open_connections": ("int", "connections open now")},
    ),
    "front_door.refused": EventSpec(
        "warning",
        "Connections closed at once by the front door's limits (logged at most every 5 s).",
        {
            "reason": ("str", "too_many_connections or too_many_pending_from_peer"),
            "refused": ("obj", "connections refused since start, by reason"),
            "open_connections": ("int", "connections open now"),
        },
    ),
    "stream.rejected": EventSpec(
        "warning",
        "A media WebSocket was refused: before the upgrade (403) or after it with a close code.",
        {
            "reason": ("str", "why, in words"),
            "client": ("str", "peer address (refusals before the upgrade)"),
            "close_code": ("int", "WebSocket close code sent"),
        },
        required=("reason",),
    ),
    "stream.closed_before_start": EventSpec("info", "A media WebSocket closed before its start event."),
    "call.started": EventSpec(
        "info",
        "A call's actors are running.",
        {"audio_format": ("str", "pcmu (passthrough) or pcm24k (transcoding)")},
        context=IN_CALL,
    ),
    "call.barge_in": EventSpec(
        "info",
        "The caller spoke over the assistant: Twilio's buffer was cleared.",
        {
            "generation": ("int", "playout generation cleared"),
            "source": ("str", "ai (server VAD) or local (gateway VAD)"),
            "clear_latency_ms": ("num", "speech detected -> clear sent"),
            "heard": ("obj", "item id -> ms of it the caller heard"),
        },
        context=IN_ACTOR,
    ),
    "call.dtmf": EventSpec(
        "info",
        "The caller finished a keypad entry (its digits go to the AI only; logs and the bus get the count).",
        {"digits": ("int", "how many keys")},
        context=IN_ACTOR,
    ),
    "call.operator_say": EventSpec(
        "info",
        "An operator message was given to the AI.",
        {"characters": ("int", "message length")},
        context=IN_ACTOR,
    ),
    "call.transferred": EventSpec(
        "info",
        "The AI transferred the call.",
        {"destination": ("str", "the number (masked)")},
        context=IN_ACTOR,
    ),
    "call.transfer_failed": EventSpec(
        "warning",
        "The AI's transfer failed; the call goes on.",
        {"destination": ("str", "the number (masked)"), "error": ("str", "what failed")},
        context=IN_ACTOR,
    ),
    "call.hang_up_failed": EventSpec(
        "warning",
        "The AI's hang-up through Twilio REST failed; the stream is closed anyway.",
        {"error": ("str", "what failed")},
        context=IN_ACTOR,
    ),
    "ai.silent": EventSpec(
        "warning",
        "The provider sent nothing, not even a pong, for the silence limit: its session is replaced.",
        {"quiet_s": ("num", "seconds since anything arrived")},
        context=IN_ACTOR,
    ),
    "actor.crashed": EventSpec(
        "error",
        "An actor raised: its call ends as internal_error, no other call notices.",
        {"error": ("str", "the first error raised, as type: message")},
        exception=True,
        context=IN_ACTOR,
    ),
    "call.summary": EventSpec(
        "info",
        "Exactly one per call's stream, whatever ended it (a call moved between instances has one "
        "per stream, tied by its call_sid).",
        {
            "account_sid": ("str", "Twilio AccountSid"),
            "direction": ("str", "inbound or outbound"),
            "from": ("str", "caller number (masked unless GATEWAY_LOG_PHONE_NUMBERS=full)"),
            "to": ("str", "called number (masked likewise)"),
            "moved_from": ("str", "the instance this stream's call was moved from (a fleet's drain)"),
            "started_at": ("str", "ISO 8601 UTC"),
            "ended_at": ("str", "ISO 8601 UTC"),
            "duration_s": ("num", "seconds"),
            "end_reason": (
                "str",
                "twilio_stop, twilio_closed, twilio_protocol_error, twilio_silent, ai_unavailable, ai_error, "
                "ai_hangup, transferred, shutdown, operator_hangup, internal_error, moved (the call goes on "
                "on another instance)",
            ),
            "end_detail": ("str", "the reason in words"),
            "close_code": ("int", "WebSocket close code sent to Twilio"),
            "audio_format": ("str", "pcmu or pcm24k"),
            "frames_in": ("int", "caller frames received"),
            "frames_out": ("int", "assistant frames sent"),
            "drops": ("obj", "audio items dropped, by channel"),
            "peak_depths": ("obj", "highest queue depth, by channel"),
            "underruns": ("int", "times playout ran dry mid-response"),
            "barge_ins": ("int", "caller interruptions"),
            "clears_sent": ("int", "Twilio clear messages"),
            "clear_latency_ms_max": ("num?", "worst speech detected -> clear sent"),
            "truncations": ("int", "AI items truncated to what was heard"),
            "truncate_errors": ("int", "truncations the AI refused"),
            "stale_audio_discarded": ("int", "AI audio dropped because it was interrupted"),
            "marks_sent": ("int", "Twilio marks sent"),
            "marks_echoed": ("int", "Twilio marks echoed back"),
            "dtmf_digits": ("int", "keys pressed"),
            "dtmf_entries": ("int", "keypad entries completed"),
            "twilio_sequence_gaps": ("int", "missing Twilio sequence numbers"),
            "ai_sessions": ("int", "AI sessions opened"),
            "ai_reconnects": ("int", "AI sessions reopened after a drop or recycle"),
            "ai_appends_sent": ("int", "audio appends sent to the AI"),
            "ai_deltas_received": ("int", "audio deltas received from the AI"),
            "ai_responses": ("int", "AI responses completed"),
            "ai_errors": ("int", "AI error events"),
            "ai_tool_calls": ("int", "AI tool calls"),
            "ai_usage": ("obj", "token counts as the provider reports them"),
            "uplink_latency_ms": ("obj", "caller frame in -> sent to the AI: " + _LATENCY),
            "downlink_latency_ms": ("obj", "AI delta in -> its first frame sent to Twilio: " + _LATENCY),
        },
        required=(
            "account_sid",
            "direction",
            "started_at",
            "ended_at",
            "duration_s",
            "end_reason",
            "close_code",
            "audio_format",
            "frames_in",
            "frames_out",
            "drops",
            "underruns",
            "barge_ins",
            "ai_reconnects",
            "uplink_latency_ms",
            "downlink_latency_ms",
        ),
        context=IN_CALL,
    ),
    # ---- the AI session ------------------------------------------------------------
    "ai.session_created": EventSpec(
        "info",
        "The provider opened a session.",
        {
            "session_id": ("str", "provider session id"),
            "expires_at": ("int?", "Unix time the session expires"),
        },
        context=IN_ACTOR,
    ),
    "ai.reconnecting": EventSpec(
        "warning",
        "The AI connection dropped or failed; retrying after a delay.",
        {
            "reason": ("str", "what failed"),
            "attempt": ("int", "consecutive failures"),
            "delay_s": ("num", "backoff"),
        },
        context=IN_ACTOR,
    ),
    "ai.conversation_replayed": EventSpec(
        "info",
        "A new AI session was given the conversation so far.",
        {"turns": ("int", "items replayed")},
        context=IN_ACTOR,
    ),
    "call.moving": EventSpec(
        "info",
        "A draining instance closes the call's stream (1000) for another instance to carry it on.",
        {
            "turns": ("int", "conversation turns saved for the next instance"),
            "forced": ("bool", "the move deadline passed before a turn boundary"),
        },
        context=IN_ACTOR,
    ),
    "call.move_failed": EventSpec(
        "warning",
        "A call could not be moved (its conversation could not be saved); it stays here.",
        {"reason": ("str", "why")},
        context=IN_ACTOR,
    ),
    "ai.recycling": EventSpec(
        "info",
        "The AI session nears its provider limit and is replaced at a turn boundary.",
        {"age_s": ("num", "session age")},
        context=IN_ACTOR,
    ),
    "ai.unavailable": EventSpec(
        "error",
        "No AI session could be had; the call ends.",
        {"reason": ("str", "what failed")},
        context=IN_ACTOR,
    ),
    "ai.protocol_error": EventSpec(
        "warning",
        "The AI sent a frame that could not be parsed.",
        {"reason": ("str", "what was wrong")},
        context=IN_ACTOR,
    ),
    "ai.response_done": EventSpec(
        "info",
        "An AI response finished.",
        {
            "response_id": ("str", "provider response id"),
            "status": ("str", "completed, cancelled, failed, incomplete"),
            "status_reason": ("str?", "why, when not completed"),
        },
        context=IN_ACTOR,
    ),
    "ai.error": EventSpec(
        "warning",
        "The AI reported an error event.",
        {
            "code": ("str?", "provider error code"),
            "error_type": ("str?", "provider error type"),
            "message": ("str?", "provider message"),
            "param": ("str?", "the offending parameter"),
            "fatal": ("bool", "whether the session cannot go on"),
        },
        context=IN_ACTOR,
    ),
    "ai.tool_call": EventSpec(
        "info",
        "The AI called a tool; the gateway answered.",
        {
            "tool": ("str", "tool name"),
            "call_id": ("str", "provider call id"),
            "output": ("str", "JSON answer"),
        },
        context=IN_ACTOR,
    ),
    "ai.action_abandoned": EventSpec(
        "info",
        "A tool action waiting for its goodbye to play was dropped because the caller interrupted.",
        {"action": ("str", "HangUp or Transfer"), "reason": ("str", "why")},
        context=IN_ACTOR,
    ),
    "ai.truncated": EventSpec(
        "info",
        "An interrupted AI item was truncated to what the caller heard.",
        {
            "item_id": ("str", "provider item id"),
            "audio_end_ms": ("int", "heard position sent"),
            "received_ms": ("int", "audio received for the item"),
        },
        context=IN_ACTOR,
    ),
    "ai.prewarm_failed": EventSpec(
        "warning",
        "Opening an AI connection ahead of the media stream failed; the call will connect on demand.",
        {"reason": ("str", "what failed")},
        context=("call_sid",),
    ),
    # ---- the admin control plane ---------------------------------------------------
    "admin.rejected": EventSpec(
        "warning",
        "An admin request or WebSocket failed authentication.",
        {"path": ("str", "request path"), "reason": ("str", "why")},
        required=("reason",),
    ),
    "admin.connected": EventSpec(
        "info", "An admin WebSocket client connected.", {"clients": ("int", "clients now")}
    ),
    "admin.disconnected": EventSpec(
        "info",
        "An admin WebSocket client left.",
        {"clients": ("int", "clients now"), "dropped": ("int", "events its outbox dropped")},
    ),
    "admin.idle_closed": EventSpec(
        "info",
        "An admin client sent nothing for too long (closed 4408).",
        {"idle_seconds": ("num", "the limit")},
    ),
    # ---- the fleet (GATEWAY_REDIS_URL) ----------------------------------------------
    "fleet.redis_down": EventSpec(
        "warning",
        "Redis stopped answering (once per outage): live calls go on, fleet features answer 503.",
        {"detail": ("str", "the command that failed and why")},
    ),
    "fleet.redis_up": EventSpec("info", "Redis answers again after an outage."),
    "fleet.record_lost": EventSpec(
        "warning",
        "A call record could not be read or written in Redis; the call went on without it.",
        {"operation": ("str", "read, put or update"), "detail": ("str", "why")},
        context=("call_sid",),
    ),
    "fleet.stream_unguarded": EventSpec(
        "warning",
        "A media stream was admitted on this instance's checks alone: Redis could not be asked "
        "whether its token or call is in use elsewhere.",
        {"detail": ("str", "why")},
        context=("call_sid",),
    ),
    "fleet.no_move_target": EventSpec(
        "warning",
        "A drain began and no other instance serves: the live calls stay here and drain.",
        {"live_calls": ("int", "calls that stay")},
    ),
    "fleet.bad_message": EventSpec(
        "warning",
        "A message on a fleet channel was not what an instance sends; it was ignored.",
        {"channel": ("str", "the Redis channel"), "detail": ("str", "what was wrong")},
    ),
    "fleet.task_failed": EventSpec(
        "error",
        "A fleet task (listen, publish_events, heartbeat) failed unexpectedly; it carries on "
        "after a pause and no call is affected.",
        {"task": ("str", "which")},
        exception=True,
    ),
    "fleet.command_failed": EventSpec(
        "error",
        "A command another instance sent failed here with an unexpected error; it was answered "
        "as unavailable.",
        {"op": ("str", "the command")},
        exception=True,
    ),
    # ---- the parent of workers (gateway run --workers N) ----------------------------
    "workers.starting": EventSpec(
        "info",
        "The parent reserved the port and starts its workers.",
        {"workers": ("int", "how many"), "listen": ("str", "host:port they share")},
    ),
    "workers.started": EventSpec(
        "info", "A worker process started.", {"worker": ("int", "its index"), "pid": ("int", "its pid")}
    ),
    "workers.exited": EventSpec(
        "warning",
        "A worker exited while serving; it is started again after a back-off.",
        {
            "worker": ("int", "its index"),
            "returncode": ("int", "exit status (negative: the signal that ended it)"),
            "restart_in_s": ("num", "back-off before the restart"),
        },
    ),
    "workers.signal": EventSpec(
        "info",
        "The parent got SIGTERM or SIGINT and forwarded it to its workers (they drain).",
        {"signal": ("str", "SIGTERM or SIGINT"), "workers": ("int", "workers it reached")},
    ),
    "workers.stopped": EventSpec("info", "Every worker has exited; so does the parent."),
    # ---- the embedded local agent (GATEWAY_AI_PROVIDER=local) -----------------------
    "local_agent.listening": EventSpec(
        "info", "The local agent serves on loopback.", {"url": ("str", "its WebSocket URL")}
    ),
    "local_agent.session_failed": EventSpec("error", "A local agent session raised.", exception=True),
    "local_agent.client_error": EventSpec(
        "info",
        "The local agent refused a client event.",
        {"code": ("str", "error code"), "message": ("str", "why")},
    ),
    "local_agent.fault": EventSpec(
        "info",
        "The local agent injected a configured fault.",
        {"fault": ("str", "drop"), "after_deltas": ("int", "deltas sent before it")},
    ),
    "local_agent.item_created": EventSpec(
        "info",
        "The local agent took a conversation item.",
        {"role": ("str?", "item role"), "kind": ("str?", "item type"), "items": ("int", "items held")},
    ),
    "local_agent.tool_call": EventSpec(
        "info",
        "The local agent called a tool.",
        {"tool": ("str", "tool name"), "call_id": ("str", "call id")},
    ),
    "local_agent.truncated": EventSpec(
        "info",
        "The local agent truncated an item.",
        {
            "item_id": ("str", "item id"),
            "audio_end_ms": ("int", "asked"),
            "generated_ms": ("int", "generated"),
        },
    ),
}

# Lines written by libraries through stdlib logging (hypercorn, trio-websocket) carry
# `logger` and a free-form `event`; they may carry any further fields.
LIBRARY_FIELDS: dict[str, tuple[str, str]] = {
    "logger": ("str", "the stdlib logger name, e.g. hypercorn.error")
}


def _property(kind: str, description: str) -> dict[str, Any]:
    nullable = kind.endswith("?")
    schema = dict(_TYPES[kind.rstrip("?")])
    if nullable:
        schema["type"] = [schema["type"], "null"]
    schema["description"] = description
    return schema


def _level(spec: EventSpec) -> dict[str, Any]:
    return {"const": spec.level}


def _event_schema(name: str, spec: EventSpec) -> dict[str, Any]:
    properties: dict[str, Any] = {"event": {"const": name}, "level": _level(spec)}
    for fname, (kind, description) in {**CONTEXT_FIELDS, **spec.fields}.items():
        properties[fname] = _property(kind, description)
    if spec.exception:
        properties["exception"] = _property(*EXCEPTION_FIELD)
    properties.update({k: {} for k in ("timestamp", "instance")})
    required = sorted({*BASE_FIELDS, *spec.required_fields})
    return {
        "description": spec.description,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def json_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) for one log line."""
    base = {name: _property(kind, description) for name, (kind, description) in BASE_FIELDS.items()}
    base["level"]["enum"] = ["debug", "info", "warning", "error"]
    base["timestamp"]["format"] = "date-time"
    library = {
        "type": "object",
        "properties": {name: _property(*spec) for name, spec in LIBRARY_FIELDS.items()},
        "required": ["logger"],
    }
    gateway_event = {"properties": {"event": {"enum": sorted(EVENTS)}}}
    branches = [
        {"if": {"properties": {"event": {"const": name}}}, "then": {"$ref": f"#/$defs/{name}"}}
        for name in sorted(EVENTS)
    ]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/trio-telephony-gateway/log-events.schema.json",
        "title": "Gateway log line",
        "description": (
            "One JSON line on the gateway's stdout (python -m gateway.observability.log_schema writes this)."
        ),
        "type": "object",
        "properties": base,
        "required": sorted(BASE_FIELDS),
        "if": {"required": ["logger"]},
        "then": library,
        "else": {"allOf": [gateway_event, *branches]},
        "$defs": {name: _event_schema(name, EVENTS[name]) for name in sorted(EVENTS)},
    }


def markdown() -> str:
    """The human reference: one section per event."""
    lines = [
        "# Log events",
        "",
        "Generated from `gateway/observability/log_schema.py`",
        "(`python -m gateway.observability.log_schema`); the JSON Schema is `log-events.schema.json`",
        "next to this file. Every line is one JSON object with:",
        "",
        *_field_rows(BASE_FIELDS),
        "",
        "Lines written for a call also carry:",
        "",
        *_field_rows(CONTEXT_FIELDS),
        "",
        "Lines from libraries (hypercorn, trio-websocket) carry `logger` and a free-form `event`.",
        "Phone numbers are masked (`+*******4567`) unless `GATEWAY_LOG_PHONE_NUMBERS=full`;",
        "secrets never appear.",
    ]
    for name, spec in EVENTS.items():
        lines += ["", f"## `{name}` ({spec.level})", "", spec.description]
        fields = dict(spec.fields)
        if spec.exception:
            fields["exception"] = EXCEPTION_FIELD
        if spec.context:
            lines += ["", "Always carries " + ", ".join(f"`{name}`" for name in spec.context) + "."]
        if fields:
            lines += ["", *_field_rows(fields, spec.required_fields)]
    return "\n".join(lines) + "\n"


def _field_rows(fields: dict[str, tuple[str, str]], required: tuple[str, ...] | None = None) -> list[str]:
    rows = ["| field | type | meaning |", "| --- | --- | --- |"]
    for name, (kind, description) in fields.items():
        mark = "" if required is None or name in required else " (optional)"
        rows.append(f"| `{name}` | {kind} | {description}{mark} |")
    return rows


def render() -> dict[str, str]:
    """The committed documents, by path relative to the repository root."""
    return {
        "docs/log-events.schema.json": json.dumps(json_schema(), indent=2) + "\n",
        "docs/log-events.md": markdown(),
    }


if __name__ == "__main__":
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for path, text in render().items():
        (root / path).parent.mkdir(exist_ok=True)
        (root / path).write_text(text)
        print(path)
