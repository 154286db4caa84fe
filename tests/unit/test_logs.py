"""Structured logs: tracebacks without local variables, numbers masked."""

import io
import json
import logging

import structlog

from gateway.observability import logs
from gateway.observability.logs import TRACEBACKS, configure_logging

SECRET = "sk-local-variable-must-not-be-logged"


def wait_written() -> bool:
    assert logs._WRITER is not None
    return logs._WRITER.wait_written(5)


def fail_with_a_secret_in_a_local() -> None:
    api_key = SECRET  # noqa: F841  (a local that a traceback with locals would print)
    raise TypeError("unsupported operand")


def test_structured_tracebacks_carry_no_local_variables():
    """The traceback of a logged exception names frames and lines, never their locals."""
    try:
        fail_with_a_secret_in_a_local()
    except TypeError as exc:
        rendered = TRACEBACKS(None, "error", {"event": "x", "exc_info": exc})
    assert SECRET not in json.dumps(rendered, default=str)
    frames = rendered["exception"][0]["frames"]
    assert frames[-1]["name"] == "fail_with_a_secret_in_a_local"
    assert all("locals" not in frame or not frame["locals"] for frame in frames)


def test_the_json_logs_of_a_crash_hold_no_secret():
    """As the gateway writes it: JSON line, traceback included, no local's value."""
    out = io.BytesIO()
    handlers, level = logging.getLogger().handlers, logging.getLogger().level
    configure_logging("info", "json", instance="test", out=out)
    try:
        try:
            fail_with_a_secret_in_a_local()
        except TypeError:
            structlog.get_logger("test").exception("actor.crashed", error="TypeError")
        assert wait_written()
        line = out.getvalue().decode()
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers = handlers
        logging.getLogger().setLevel(level)
    assert '"actor.crashed"' in line
    assert "fail_with_a_secret_in_a_local" in line
    assert SECRET not in line
