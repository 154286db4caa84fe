"""Structured logs: JSON lines on stdout (or a readable console view on a terminal).

Configured once at start-up. structlog renders our own events with orjson straight to
stdout (4 us a line); third-party libraries that use stdlib `logging` (hypercorn,
trio-websocket) go through structlog's ProcessorFormatter into the same JSON shape.
Call context (`call_sid`, `stream_sid`, `actor`) comes from contextvars bound by the
call supervisor; `instance` is stamped on every line. Nothing on the per-frame path
logs at info. The events and their fields are documented in `gateway/log_schema.py`.

Phone numbers are masked on the way out (`+15551234567` -> `+*******4567`) wherever
they appear, in any field at any depth, unless the operator asks for them in full.
"""

from __future__ import annotations

import atexit
import logging
import re
import sys
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime
from functools import partial
from typing import Any, BinaryIO

import orjson
import structlog

from gateway.observability.log_writer import DEFAULT_BUFFER_BYTES, LogWriter, TextLogWriter

# Structured tracebacks without local variables: structlog's `dict_tracebacks` shows
# them, and a frame's locals hold auth tokens, keys and callers' audio.
TRACEBACKS = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
)
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
Processor = Callable[[Any, str, MutableMapping[str, Any]], MutableMapping[str, Any]]

# E.164 as Twilio writes it: "+" and 7 to 15 digits, not part of a longer run of digits.
_PHONE = re.compile(r"(?<![\d+])\+([1-9]\d{2,10})(\d{4})(?!\d)")


def mask_phone_numbers(text: str) -> str:
    """Every E.164 number in `text` with all but its last four digits starred."""
    return _PHONE.sub(lambda m: "+" + "*" * len(m.group(1)) + m.group(2), text)


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_phone_numbers(value) if "+" in value else value
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    return value


def _mask_processor(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if not isinstance(value, int | float | bool | None):
            event[key] = _masked(value)
    return event


def _instance_processor(instance: str) -> Processor:
    def add_instance(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event.setdefault("instance", instance)
        return event

    return add_instance


def processors(instance: str, mask_numbers: bool = True) -> list[Any]:
    """Everything a line goes through before rendering (shared with the schema tests)."""
    chain: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _instance_processor(instance),
    ]
    if mask_numbers:
        chain.append(_mask_processor)
    return chain


_WRITER: LogWriter | None = None  # the process's one writer thread, like stdout itself


def _writer(instance: str, out: BinaryIO, buffer_bytes: int) -> LogWriter:
    global _WRITER  # noqa: PLW0603
    _WRITER = LogWriter(out, partial(_dropped_line, instance), buffer_bytes)
    atexit.register(_WRITER.wait_written, 2.0)
    return _WRITER


def dropped_lines() -> int:
    """Log lines dropped because stdout did not keep up (for the metrics)."""
    return _WRITER.dropped if _WRITER is not None else 0


def _dropped_line(instance: str, dropped: int) -> bytes:
    line = {
        "event": "log.dropped",
        "level": "warning",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "instance": instance,
        "dropped": dropped,
    }
    return orjson.dumps(line) + b"\n"


def configure_logging(
    level: str = "info",
    fmt: str = "auto",
    *,
    instance: str = "",
    mask_numbers: bool = True,
    out: BinaryIO | None = None,
    buffer_bytes: int = DEFAULT_BUFFER_BYTES,
) -> None:
    """Configure structlog and stdlib logging once; JSON lines go to `out` (stdout) through
    a writer thread the event loop never waits for."""
    console = fmt == "console" or (fmt == "auto" and sys.stdout.isatty())
    shared = processors(instance, mask_numbers)
    if console:
        renderer: Any = structlog.dev.ConsoleRenderer()
        factory: Any = structlog.PrintLoggerFactory(sys.stdout)
        exceptions: list[Any] = []
    else:
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
        writer = _writer(instance, out or sys.stdout.buffer, buffer_bytes)
        factory = structlog.BytesLoggerFactory(writer)  # type: ignore[arg-type]
        exceptions = [TRACEBACKS]
    structlog.configure(
        processors=[*shared, *exceptions, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    _route_stdlib_logging(shared, exceptions, None if console else writer, _LEVELS[level])


def _route_stdlib_logging(
    shared: list[Any], exceptions: list[Any], writer: LogWriter | None, level: int
) -> None:
    console = writer is None
    stdlib_renderer: Any = (
        structlog.dev.ConsoleRenderer()
        if console
        else structlog.processors.JSONRenderer(serializer=lambda obj, **_: orjson.dumps(obj).decode())
    )
    handler = logging.StreamHandler(sys.stdout if writer is None else TextLogWriter(writer))
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *exceptions,
                stdlib_renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(max(level, logging.WARNING) if level > logging.DEBUG else logging.DEBUG)
