"""The local agent's WebSocket server (trio-websocket), with OpenAI's handshake rules.

Every connection must carry `Authorization: Bearer <key>` with the key minted at start-up
(loopback or not, no endpoint goes unauthenticated), and must not carry `OpenAI-Beta`:
like the real service since 2026-05-12, a beta handshake is accepted, told
`beta_api_shape_disabled`, and closed with 4000. Each connection is caught on its own,
so one broken session never stops the server (trio-websocket re-raises handler errors).
"""

from __future__ import annotations

import secrets
from functools import partial

import orjson
import structlog
import trio
import trio_websocket

from actors.barrier import contain
from actors.message_socket import SocketClosed
from gateway.ai.endpoints import RealtimeEndpoint
from gateway.ai.local_agent.options import AgentOptions
from gateway.ai.local_agent.session import AgentSession
from gateway.net.trio_websocket import TrioWebSocketMessageSocket
from gateway.settings import Secret

log = structlog.get_logger("gateway.ai.local_agent")

REALTIME_PATH = "/v1/realtime"


async def serve_local_agent(
    model: str,
    options: AgentOptions | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    task_status: trio.TaskStatus[RealtimeEndpoint] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; `task_status` receives the endpoint (URL and key) to dial."""
    api_key = secrets.token_urlsafe(24)
    handler = partial(_handle, api_key=api_key, model=model, options=options or AgentOptions())
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            partial(
                trio_websocket.serve_websocket,
                handler,
                host,
                port,
                None,
                handler_nursery=nursery,
                max_message_size=16 * 1024 * 1024,
            )
        )
        endpoint = RealtimeEndpoint.openai(f"http://{host}:{server.port}/v1", model, Secret(api_key))
        log.info("local_agent.listening", url=endpoint.url)
        task_status.started(endpoint)


async def _handle(
    request: trio_websocket.WebSocketRequest, *, api_key: str, model: str, options: AgentOptions
) -> None:
    """A barrier: whatever one session raises (an exception group from its nursery
    included) is logged and ends that session; trio-websocket would otherwise let it stop
    the whole server, and every call with it."""

    def failed(failure: Exception) -> None:
        log.exception("local_agent.session_failed", exc_info=failure)

    await contain(partial(_serve_connection, request, api_key, model, options), failed)


async def _serve_connection(
    request: trio_websocket.WebSocketRequest, api_key: str, model: str, options: AgentOptions
) -> None:
    headers = {name.lower(): value for name, value in request.headers}
    authorization = headers.get(b"authorization", b"")
    if not secrets.compare_digest(authorization, b"Bearer " + api_key.encode()):
        await request.reject(401, body=b"Incorrect API key provided.")
        return
    if not request.path.startswith(REALTIME_PATH):
        await request.reject(404, body=b"Unknown path.")
        return
    if options.accept_delay_ms:  # fault: a provider far away, or slow to set a session up
        await trio.sleep(options.accept_delay_ms / 1000)
    connection = await request.accept()
    socket = TrioWebSocketMessageSocket(connection)
    if b"openai-beta" in headers:
        await _refuse_beta(socket)
        return
    try:
        await AgentSession(socket, model, options).run()
    except SocketClosed:
        pass
    finally:
        await socket.close(1000)


async def _refuse_beta(socket: TrioWebSocketMessageSocket) -> None:
    error = {
        "type": "error",
        "event_id": "event_beta",
        "error": {
            "type": "invalid_request_error",
            "code": "beta_api_shape_disabled",
            "message": (
                "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API."
            ),
            "param": None,
            "event_id": None,
        },
    }
    try:
        await socket.send(orjson.dumps(error).decode())
    finally:
        await socket.close(4000, "beta_api_shape_disabled")
