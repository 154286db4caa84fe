"""Structured logs: tracebacks without local variables, numbers masked."""

import json

import structlog

from gateway.observability.logs import TRACEBACKS, configure_logging

SECRET = "sk-local-variable-must-not-be-logged"


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


def test_the_json_logs_of_a_crash_hold_no_secret(capsysbinary):
    """As the gateway writes it: JSON line, traceback included, no local's value."""
    configure_logging("info", "json", instance="test")
    try:
        try:
            fail_with_a_secret_in_a_local()
        except TypeError:
            structlog.get_logger("test").exception("actor.crashed", error="TypeError")
        line = capsysbinary.readouterr().out.decode()
    finally:
        structlog.reset_defaults()
    assert '"actor.crashed"' in line
    assert "fail_with_a_secret_in_a_local" in line
    assert SECRET not in line
