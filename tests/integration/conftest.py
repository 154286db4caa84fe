"""Every log line written during an integration test follows the documented schema and
shows no configured secret."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import jsonschema
import orjson
import pytest
import structlog

from gateway.observability.log_schema import json_schema
from gateway.observability.logs import TRACEBACKS, processors
from tests import secret_watch

VALIDATOR = jsonschema.Draft202012Validator(json_schema())


@pytest.fixture(autouse=True)
def log_lines_follow_the_schema() -> Iterator[list[dict[str, Any]]]:
    """Route structlog through the production processors and renderer into a list, then
    validate each line (tests that use `capture_logs` see their own records instead)."""
    lines: list[dict[str, Any]] = []
    renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)

    def collect(logger: Any, method: str, event: Any) -> Any:
        lines.append(orjson.loads(renderer(logger, method, event)))
        raise structlog.DropEvent

    structlog.configure(
        processors=[*processors("test-instance"), TRACEBACKS, collect],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        cache_logger_on_first_use=False,
    )
    try:
        yield lines
    finally:
        structlog.reset_defaults()
    problems = [
        f"{line.get('event')}: {error.message}" for line in lines for error in VALIDATOR.iter_errors(line)
    ]
    assert not problems, "log lines outside the schema:\n" + "\n".join(problems)
    leaked = secret_watch.leaks("\n".join(orjson.dumps(line).decode() for line in lines))
    assert not leaked, f"configured secrets appear in the logs: {leaked}"
