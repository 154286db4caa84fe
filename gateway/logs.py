"""Structured logs: JSON lines on stdout (or a readable console view on a terminal).

Configured once at start-up. structlog renders our own events with orjson straight to
stdout (4 us a line); third-party libraries that use stdlib `logging` (hypercorn,
trio-websocket) go through structlog's ProcessorFormatter into the same JSON shape.
Call context (`call_sid`, `stream_sid`, `actor`) comes from contextvars bound by the
call supervisor. Nothing on the per-frame path logs at info.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson
import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    console = fmt == "console" or (fmt == "auto" and sys.stdout.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if console:
        renderer: Any = structlog.dev.ConsoleRenderer()
        factory: Any = structlog.PrintLoggerFactory(sys.stdout)
        exceptions: list[Any] = []
    else:
        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
        factory = structlog.BytesLoggerFactory(sys.stdout.buffer)
        exceptions = [structlog.processors.dict_tracebacks]
    structlog.configure(
        processors=[*shared, *exceptions, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    _route_stdlib_logging(shared, exceptions, console, _LEVELS[level])


def _route_stdlib_logging(shared: list[Any], exceptions: list[Any], console: bool, level: int) -> None:
    stdlib_renderer: Any = (
        structlog.dev.ConsoleRenderer()
        if console
        else structlog.processors.JSONRenderer(serializer=lambda obj, **_: orjson.dumps(obj).decode())
    )
    handler = logging.StreamHandler(sys.stdout)
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
