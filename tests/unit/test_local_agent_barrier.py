"""The local agent's connection handler is a barrier: one session's failure, exception
groups mixed with cancellation included, is logged there and never stops the server
that every call dials (trio-websocket lets a handler's exception stop it)."""

import structlog
import trio

from gateway.ai.local_agent.options import AgentOptions
from gateway.ai.local_agent.server import _handle


class FailsWhileCancelled:
    """A connection whose handling fails at the moment the server is being cancelled: its
    nursery raises the error and its child's Cancelled together (a BaseExceptionGroup)."""

    headers = ()
    path = "/v1/realtime"

    def __init__(self, server: trio.CancelScope) -> None:
        self._server = server

    async def reject(self, status, body):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep_forever)
            await trio.lowlevel.checkpoint()
            self._server.cancel()
            raise KeyError("a bug in one session")


async def test_a_session_failing_as_the_server_is_cancelled_is_contained_and_logged():
    with structlog.testing.capture_logs() as logs, trio.CancelScope() as server:
        await _handle(FailsWhileCancelled(server), api_key="k", model="m", options=AgentOptions())
    assert server.cancelled_caught  # the cancellation went on up, as trio intends
    assert [entry["event"] for entry in logs] == ["local_agent.session_failed"]
