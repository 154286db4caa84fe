"""Suite-wide: no secret a test configures may appear in anything the gateway logs."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from tests import secret_watch

secret_watch.install()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """A test whose captured output, or whose gateway processes' logs, show a configured
    secret fails, however it otherwise went."""
    outcome = yield
    report = outcome.get_result()
    texts = [content for _, content in report.sections] if report.when == "call" else []
    texts += secret_watch.process_lines
    secret_watch.process_lines.clear()
    leaked = secret_watch.leaks("\n".join(texts))
    if leaked and report.outcome != "failed":
        report.outcome = "failed"
        report.longrepr = f"configured secrets appear in the logs: {', '.join(leaked)}"
