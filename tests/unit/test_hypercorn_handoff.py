"""The hypercorn internals `gateway.net.hypercorn_handoff` relies on are still there.

These are not hypercorn's public API: an upgrade may move or change them. Each test
names what would break, so an upgrade fails here, loudly, and not in production.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version

from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.utils import raise_shutdown, wrap_app

from gateway.net.hypercorn_handoff import SUPPORTED_HYPERCORN


def parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def test_the_installed_hypercorn_is_the_release_the_handoff_was_written_for():
    assert version("hypercorn").startswith(SUPPORTED_HYPERCORN + "."), (
        f"hypercorn {version('hypercorn')} is installed; gateway/net/hypercorn_handoff.py copies "
        f"worker_serve from {SUPPORTED_HYPERCORN}: compare it with the new hypercorn/trio/run.py"
    )


def test_lifespan_is_built_from_the_app_config_and_state_and_runs_as_a_started_task():
    assert parameters(Lifespan.__init__) == ["self", "app", "config", "state"]
    assert "task_status" in parameters(Lifespan.handle_lifespan)
    assert inspect.iscoroutinefunction(Lifespan.wait_for_startup)
    assert inspect.iscoroutinefunction(Lifespan.wait_for_shutdown)


def test_a_tcp_server_is_built_per_connection_from_app_config_context_state_and_stream():
    assert parameters(TCPServer.__init__) == ["self", "app", "config", "context", "state", "stream"]
    assert inspect.iscoroutinefunction(TCPServer.run)


def test_the_worker_context_carries_the_terminate_events():
    context = WorkerContext(None)
    assert hasattr(context.terminate, "wait")
    assert hasattr(context.terminated, "set")


def test_the_helpers_take_what_the_handoff_passes():
    assert parameters(wrap_app) == ["app", "wsgi_max_body_size", "mode"]
    assert parameters(raise_shutdown) == ["shutdown_event"]
