"""The realtime client's handshake, checked by a real server that records what it receives."""

from functools import partial

import pytest
import trio
import trio_websocket

from actors.message_socket import ConnectFailed
from gateway.config import Secret
from gateway.realtime_client import RealtimeConnector, RealtimeEndpoint


def test_openai_url_is_the_base_url_with_ws_scheme_and_model():
    """As the openai SDK builds it: https -> wss, then /realtime?model=..."""
    endpoint = RealtimeEndpoint.openai("https://api.openai.com/v1/", "gpt-realtime", Secret("k"))
    assert endpoint.url == "wss://api.openai.com/v1/realtime?model=gpt-realtime"
    assert RealtimeEndpoint.openai("http://127.0.0.1:9/v1", "a b", Secret("k")).url == (
        "ws://127.0.0.1:9/v1/realtime?model=a%20b"
    )


async def test_handshake_sends_bearer_auth_and_no_beta_header():
    """The upgrade carries Authorization: Bearer and nothing that selects the retired beta protocol."""
    seen = {}

    async def handler(request):
        seen["path"] = request.path
        seen["headers"] = {k.lower(): v for k, v in request.headers}
        ws = await request.accept()
        await ws.send_message('{"type":"session.created","session":{"id":"s"}}')
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        server = await nursery.start(partial(trio_websocket.serve_websocket, handler, "127.0.0.1", 0, None))
        endpoint = RealtimeEndpoint.openai(
            f"http://127.0.0.1:{server.port}/v1", "gpt-realtime", Secret("sk-t")
        )
        async with RealtimeConnector(endpoint, connect_timeout=5).connect() as socket:
            assert "session.created" in await socket.receive()
        nursery.cancel_scope.cancel()
    assert seen["path"] == "/v1/realtime?model=gpt-realtime"
    assert seen["headers"][b"authorization"] == b"Bearer sk-t"
    assert b"openai-beta" not in seen["headers"]


async def test_rejected_handshake_is_a_connect_failure_naming_the_status():
    """A 401 at the upgrade becomes ConnectFailed with the HTTP status, not a crash."""

    async def handler(request):
        await request.reject(401, body=b"bad key")

    async with trio.open_nursery() as nursery:
        server = await nursery.start(partial(trio_websocket.serve_websocket, handler, "127.0.0.1", 0, None))
        endpoint = RealtimeEndpoint.openai(f"http://127.0.0.1:{server.port}/v1", "m", Secret("x"))
        with pytest.raises(ConnectFailed, match="HTTP 401"):
            async with RealtimeConnector(endpoint, connect_timeout=5).connect():
                pass
        nursery.cancel_scope.cancel()


async def test_unreachable_endpoint_is_a_connect_failure():
    """Nothing listening: ConnectFailed saying the endpoint is unreachable."""
    endpoint = RealtimeEndpoint.openai("http://127.0.0.1:9/v1", "m", Secret("x"))
    with pytest.raises(ConnectFailed, match="unreachable"):
        async with RealtimeConnector(endpoint, connect_timeout=5).connect():
            pass
