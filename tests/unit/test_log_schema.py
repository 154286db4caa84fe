"""The log event schema is complete, valid, committed, and what the code writes."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from actors.messages import CallEnd, EndReason
from actors.summary import CallSummary
from gateway.observability.log_schema import CONTEXT_FIELDS, EVENTS, json_schema, render
from gateway.observability.logs import mask_phone_numbers, processors

ROOT = Path(__file__).resolve().parents[2]
LEVELS = {"debug": "debug", "info": "info", "warning": "warning", "error": "error", "exception": "error"}
VALIDATOR = jsonschema.Draft202012Validator(json_schema(), format_checker=jsonschema.FormatChecker())


def _log_calls() -> list[tuple[str, str, str, set[str]]]:
    """(where, event, level, keyword fields) for every `log.<level>("event", ...)` in the code."""
    found = []
    for path in sorted([*ROOT.glob("actors/**/*.py"), *ROOT.glob("gateway/**/*.py")]):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr not in LEVELS or not isinstance(node.func.value, ast.Name):
                continue
            if node.func.value.id != "log":
                continue
            first = node.args[0] if node.args else None
            assert isinstance(first, ast.Constant), f"{path}:{node.lineno}: event name must be a literal"
            fields = {keyword.arg for keyword in node.keywords if keyword.arg not in (None, "exc_info")}
            found.append((f"{path.relative_to(ROOT)}:{node.lineno}", first.value, node.func.attr, fields))
    return found


def test_the_committed_schema_and_reference_match_the_table() -> None:
    for path, text in render().items():
        assert (ROOT / path).read_text() == text, (
            f"{path} is stale: run python -m gateway.observability.log_schema"
        )


def test_the_schema_is_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(json_schema())


def test_every_event_the_code_writes_is_documented_with_its_level_and_fields() -> None:
    calls = _log_calls()
    assert len(calls) > 50
    for where, event, method, fields in calls:
        assert event in EVENTS, f"{where}: {event} is not in gateway/log_schema.py"
        spec = EVENTS[event]
        assert spec.level == LEVELS[method], f"{where}: {event} is documented at {spec.level}"
        assert spec.exception == (method == "exception"), f"{where}: {event} exception flag"
        unknown = fields - spec.fields.keys() - CONTEXT_FIELDS.keys()
        assert not unknown, f"{where}: {event} writes undocumented fields {unknown}"


# Written by the log writer's own thread, which cannot log through structlog (it is the sink).
WRITTEN_BY_THE_LOG_WRITER = {"log.dropped"}


def test_every_documented_event_is_written_somewhere() -> None:
    written = {event for _, event, _, _ in _log_calls()} | WRITTEN_BY_THE_LOG_WRITER
    assert set(EVENTS) - written == set()


def _line(**fields: Any) -> dict[str, Any]:
    return {"level": "info", "timestamp": "2026-11-21T10:00:00.000000Z", "instance": "gw-1", **fields}


def test_a_line_with_an_undocumented_field_or_wrong_type_fails() -> None:
    good = _line(event="call.dtmf", call_sid="CA1", stream_sid="MZ1", actor="keypad", digits=4)
    VALIDATOR.validate(good)
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate({**good, "keys": "1234"})
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate({**good, "digits": "4"})
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate({**good, "level": "warning"})
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(_line(event="no.such_event"))


def test_library_lines_need_only_a_logger() -> None:
    VALIDATOR.validate(_line(event="Running on fd://3", logger="hypercorn.error", level="warning"))


def test_phone_numbers_are_masked_to_their_last_four_digits() -> None:
    assert mask_phone_numbers("+15551234567") == "+*******4567"
    assert mask_phone_numbers("from +442071838750 to +15551234567.") == "from +********8750 to +*******4567."
    assert mask_phone_numbers("CA0123456789 +12") == "CA0123456789 +12"  # not numbers


def test_the_pipeline_masks_numbers_at_any_depth_and_stamps_the_instance() -> None:
    chain = processors("gw-7", mask_numbers=True)
    event: Any = {"event": "x", "to": "+15551234567", "settings": {"allowed": ["+15557654321"]}, "n": 3}
    for processor in chain:
        event = processor(None, "info", event)
    assert event["to"] == "+*******4567"
    assert event["settings"] == {"allowed": ["+*******4321"]}
    assert event["instance"] == "gw-7"
    assert event["level"] == "info"
    assert event["n"] == 3


def test_full_numbers_only_when_asked() -> None:
    event: Any = {"event": "x", "to": "+15551234567"}
    for processor in processors("gw-7", mask_numbers=False):
        event = processor(None, "info", event)
    assert event["to"] == "+15551234567"


def test_a_call_summary_record_validates() -> None:
    summary = CallSummary(
        call_sid="CA1", stream_sid="MZ1", account_sid="AC1", started_at=1_790_000_000.0, duration_s=12.5,
        extras={"direction": "inbound", "from": "+*******4567", "to": "+*******0001"},
        end=CallEnd(EndReason.TWILIO_STOP), audio_format="pcmu", frames_in=600, frames_out=500,
        uplink_latency_ms={"p50": 0.05, "p99": 0.1, "max": 0.2, "samples": 600},
        downlink_latency_ms={"p50": 0.05, "p99": 0.1, "max": 0.2, "samples": 30},
    )  # fmt: skip
    record = _line(event="call.summary", **summary.log_fields())
    VALIDATOR.validate(json.loads(json.dumps(record)))
