"""The realtime client's handshake and pre-warm, checked by a real server that records what it gets."""

from functools import partial

import pytest
import trio
import trio_websocket

from actors.message_socket import ConnectFailed
from actors.realtime import Dialect
from gateway.ai.connector import RealtimeConnector
from gateway.ai.endpoints import RealtimeEndpoint
from gateway.settings import Secret, load_settings


class TestEndpoints:
    def test_openai_url_is_the_base_url_with_ws_scheme_and_model(self):
        """As the openai SDK builds it: https -> wss, then /realtime?model=..."""
        endpoint = RealtimeEndpoint.openai("https://api.openai.com/v1/", "gpt-realtime", Secret("k"))
        assert endpoint.url == "wss://api.openai.com/v1/realtime?model=gpt-realtime"
        assert endpoint.headers() == [(b"Authorization", b"Bearer k")]
        assert RealtimeEndpoint.openai("http://127.0.0.1:9/v1", "a b", Secret("k")).url == (
            "ws://127.0.0.1:9/v1/realtime?model=a%20b"
        )

    def test_azure_openai_uses_the_v1_route_and_an_api_key_header(self):
        """Azure OpenAI GA: /openai/v1/realtime?model=<deployment>, api-key header, GA dialect."""
        settings = load_settings(
            None,
            {
                "GATEWAY_AI_PROVIDER": "azure-openai",
                "GATEWAY_AI_MODEL": "my-deployment",
                "AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com/",
                "AZURE_OPENAI_API_KEY": "az-key",
            },
        )
        endpoint = RealtimeEndpoint.for_provider(settings)
        assert endpoint.url == "wss://res.openai.azure.com/openai/v1/realtime?model=my-deployment"
        assert endpoint.headers() == [(b"api-key", b"az-key")]
        assert endpoint.dialect is Dialect.GA

    def test_azure_voice_live_has_its_api_version_and_dialect(self):
        """Voice Live: /voice-live/realtime?api-version=...&model=..., api-key, Voice Live dialect."""
        settings = load_settings(
            None,
            {
                "GATEWAY_AI_PROVIDER": "azure-voice-live",
                "GATEWAY_AI_MODEL": "gpt-realtime",
                "AZURE_VOICE_LIVE_ENDPOINT": "https://res.services.ai.azure.com",
                "AZURE_VOICE_LIVE_API_KEY": "vl",
            },
        )
        endpoint = RealtimeEndpoint.for_provider(settings)
        assert endpoint.url == (
            "wss://res.services.ai.azure.com/voice-live/realtime?api-version=2026-07-15&model=gpt-realtime"
        )
        assert endpoint.headers() == [(b"api-key", b"vl")]
        assert endpoint.dialect is Dialect.VOICE_LIVE


class RecordingServer:
    """A WebSocket server that records each handshake and greets like the realtime API."""

    def __init__(self):
        self.handshakes = []

    async def handler(self, request):
        self.handshakes.append((request.path, {k.lower(): v for k, v in request.headers}))
        ws = await request.accept()
        await ws.send_message('{"type":"session.created","session":{"id":"s"}}')
        await trio.sleep_forever()

    async def start(self, nursery):
        server = await nursery.start(
            partial(trio_websocket.serve_websocket, self.handler, "127.0.0.1", 0, None)
        )
        return RealtimeEndpoint.openai(f"http://127.0.0.1:{server.port}/v1", "gpt-realtime", Secret("sk-t"))


class TestHandshake:
    async def test_handshake_sends_bearer_auth_and_no_beta_header(self):
        """The upgrade carries Authorization: Bearer and nothing that selects the retired beta protocol."""
        recorder = RecordingServer()
        async with trio.open_nursery() as nursery:
            connector = RealtimeConnector(await recorder.start(nursery), nursery, connect_timeout=5)
            async with connector.connect() as socket:
                assert "session.created" in await socket.receive()
            nursery.cancel_scope.cancel()
        path, headers = recorder.handshakes[0]
        assert path == "/v1/realtime?model=gpt-realtime"
        assert headers[b"authorization"] == b"Bearer sk-t"
        assert b"openai-beta" not in headers

    async def test_rejected_handshake_is_a_connect_failure_naming_the_status(self):
        """A 401 at the upgrade becomes ConnectFailed carrying the status, not a crash."""

        async def handler(request):
            await request.reject(401, body=b"bad key")

        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                partial(trio_websocket.serve_websocket, handler, "127.0.0.1", 0, None)
            )
            endpoint = RealtimeEndpoint.openai(f"http://127.0.0.1:{server.port}/v1", "m", Secret("x"))
            with pytest.raises(ConnectFailed, match="HTTP 401") as info:
                async with RealtimeConnector(endpoint, nursery, connect_timeout=5).connect():
                    pass
            nursery.cancel_scope.cancel()
        assert info.value.status == 401

    async def test_unreachable_endpoint_is_a_connect_failure(self):
        """Nothing listening: ConnectFailed saying the endpoint is unreachable."""
        endpoint = RealtimeEndpoint.openai("http://127.0.0.1:9/v1", "m", Secret("x"))
        async with trio.open_nursery() as nursery:
            with pytest.raises(ConnectFailed, match="unreachable"):
                async with RealtimeConnector(endpoint, nursery, connect_timeout=5).connect():
                    pass


class TestPrewarm:
    async def test_prewarmed_socket_is_handed_to_the_calls_first_connect(self):
        """A socket opened at the webhook is the one the call gets: one handshake, not two."""
        recorder = RecordingServer()
        async with trio.open_nursery() as nursery:
            connector = RealtimeConnector(await recorder.start(nursery), nursery, connect_timeout=5)
            connector.prewarm("CA1")
            await trio.sleep(0.2)
            assert len(recorder.handshakes) == 1
            async with connector.for_call("CA1").connect() as socket:
                assert "session.created" in await socket.receive()
            async with connector.for_call("CA1").connect():  # a reconnect opens a fresh one
                pass
            nursery.cancel_scope.cancel()
        assert connector.prewarm_claimed == 1
        assert len(recorder.handshakes) == 2

    async def test_unclaimed_socket_is_closed_when_it_expires(self):
        """A stream that never arrives leaves no socket behind."""
        recorder = RecordingServer()
        async with trio.open_nursery() as nursery:
            connector = RealtimeConnector(await recorder.start(nursery), nursery, prewarm_seconds=0.2)
            connector.prewarm("CA1")
            await trio.sleep(0.5)
            async with connector.for_call("CA1").connect():
                pass
            nursery.cancel_scope.cancel()
        assert (connector.prewarm_expired, connector.prewarm_claimed) == (1, 0)
        assert len(recorder.handshakes) == 2

    async def test_prewarm_is_bounded(self):
        """Past prewarm_max, more ringing phones are not pre-warmed (and that is counted)."""
        recorder = RecordingServer()
        async with trio.open_nursery() as nursery:
            connector = RealtimeConnector(await recorder.start(nursery), nursery, prewarm_max=2)
            for call in range(5):
                connector.prewarm(f"CA{call}")
            await trio.sleep(0.2)
            nursery.cancel_scope.cancel()
        assert len(recorder.handshakes) == 2
        assert connector.prewarm_refused == 3

    async def test_a_webhook_retry_for_the_same_call_opens_no_second_socket(self):
        """Twilio retries a webhook it thought failed: the call still gets one warm socket,
        the first one is not leaked, and the count of warm sockets stays within bounds."""
        recorder = RecordingServer()
        async with trio.open_nursery() as nursery:
            connector = RealtimeConnector(await recorder.start(nursery), nursery, prewarm_max=1)
            connector.prewarm("CA1")
            connector.prewarm("CA1")  # while the first is still opening
            await trio.sleep(0.2)
            connector.prewarm("CA1")  # once it is warm
            connector.prewarm("CA2")  # the bound counts the one socket of CA1
            await trio.sleep(0.2)
            nursery.cancel_scope.cancel()
        assert len(recorder.handshakes) == 1
        assert (connector.prewarm_duplicates, connector.prewarm_refused) == (2, 1)
