"""The media stream over a real WebSocket: who gets in, and what ends a call."""

import base64
import json

import pytest
import structlog
import trio
import trio_websocket

from tests.integration.harness import (
    close_code,
    media_stream,
    new_call_sid,
    running_gateway,
    start_message,
    stream_token,
)


class TestAdmission:
    async def test_unsigned_upgrade_is_refused_before_accept(self):
        """An upgrade without X-Twilio-Signature gets HTTP 403, not a WebSocket."""
        async with running_gateway() as settings:
            with pytest.raises(trio_websocket.ConnectionRejected) as info:
                async with media_stream(settings, signature=None):
                    pass
        assert info.value.status_code == 403
        assert b"missing X-Twilio-Signature" in info.value.body

    async def test_wrongly_signed_upgrade_is_refused(self):
        """An upgrade signed over another URL gets HTTP 403."""
        async with running_gateway() as settings:
            with pytest.raises(trio_websocket.ConnectionRejected) as info:
                async with media_stream(settings, signature="bm90IGEgc2lnbmF0dXJl"):
                    pass
        assert info.value.status_code == 403

    @pytest.mark.parametrize("token", [None, "forged-token"], ids=["missing", "forged"])
    async def test_missing_or_forged_token_closes_with_1008(self, token):
        """A signed stream whose start carries no valid token is closed with 1008 (policy)."""
        with structlog.testing.capture_logs() as logs:
            async with running_gateway() as settings, media_stream(settings) as ws:
                await ws.send_message(start_message(new_call_sid(), token))
                assert await close_code(ws) == 1008
        assert any(e["event"] == "stream.rejected" for e in logs)
        assert not any(e["event"] == "call.started" for e in logs)

    async def test_reused_token_is_refused(self):
        """The same token a second time (a replayed stream) is closed with 1008."""
        async with running_gateway() as settings:
            call_sid = new_call_sid()
            token = await stream_token(settings, call_sid)
            async with media_stream(settings) as first:
                await first.send_message(start_message(call_sid, token))
                await trio.sleep(0.3)
                async with media_stream(settings) as second:
                    await second.send_message(start_message(call_sid, token, stream_sid="MZ" + "b" * 32))
                    assert await close_code(second) == 1008

    async def test_token_minted_for_another_call_is_refused(self):
        """A valid token presented with a different CallSid is closed with 1008."""
        async with running_gateway() as settings:
            token = await stream_token(settings, new_call_sid())
            async with media_stream(settings) as ws:
                await ws.send_message(start_message(new_call_sid(), token))
                assert await close_code(ws) == 1008

    async def test_a_replica_sharing_the_key_admits_a_stream_whose_webhook_another_answered(self):
        """Twilio's webhook and stream may reach different replicas; a shared key lets either admit it."""
        key = {"GATEWAY_STREAM_TOKEN_KEY": "fleet-key-" + "x" * 32}
        async with running_gateway(key) as webhook_side, running_gateway(key) as stream_side:
            call_sid = new_call_sid()
            token = await stream_token(webhook_side, call_sid)
            async with media_stream(stream_side) as ws:
                await ws.send_message(start_message(call_sid, token))
                with trio.fail_after(5):
                    first = json.loads(await ws.get_message())
        assert first["event"] == "media"  # the greeting: the call runs on the other replica

    async def test_a_replica_with_another_key_refuses_it(self):
        async with running_gateway() as webhook_side, running_gateway() as stream_side:
            call_sid = new_call_sid()
            token = await stream_token(webhook_side, call_sid)
            async with media_stream(stream_side) as ws:
                await ws.send_message(start_message(call_sid, token))
                assert await close_code(ws) == 1008

    async def test_expired_token_is_refused(self):
        """A token redeemed after its time to live is closed with 1008."""
        with structlog.testing.capture_logs() as logs:
            async with running_gateway(stream_token_ttl_s=1.0) as settings:
                call_sid = new_call_sid()
                token = await stream_token(settings, call_sid)
                await trio.sleep(1.1)
                async with media_stream(settings) as ws:
                    await ws.send_message(start_message(call_sid, token))
                    assert await close_code(ws) == 1008
        assert any(e.get("reason") == "stream token expired" for e in logs)

    async def test_no_start_in_time_closes_with_1008(self):
        """A stream that never sends start is closed once the start timeout passes."""
        async with running_gateway(stream_start_timeout_s=0.5) as settings, media_stream(settings) as ws:
            await ws.send_message(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
            assert await close_code(ws) == 1008


class TestIsolation:
    async def test_a_malformed_frame_ends_only_its_own_call(self):
        """Garbage on one stream closes that stream with 1007; a concurrent call keeps its audio flowing."""
        with structlog.testing.capture_logs() as logs:
            async with running_gateway() as settings:
                good_sid, bad_sid = new_call_sid(), new_call_sid()
                good_token = await stream_token(settings, good_sid)
                bad_token = await stream_token(settings, bad_sid)
                async with media_stream(settings) as good, media_stream(settings) as bad:
                    await good.send_message(start_message(good_sid, good_token))
                    await bad.send_message(start_message(bad_sid, bad_token, stream_sid="MZ" + "b" * 32))
                    await bad.send_message('{"event": "media", "media": {"payload": "%%%"}')
                    assert await close_code(bad) == 1007
                    greeting = await good.get_message()  # the local agent's greeting still arrives
                    assert json.loads(greeting)["event"] == "media"
                    assert base64.b64decode(json.loads(greeting)["media"]["payload"])
        summaries = {e["call_sid"]: e for e in logs if e["event"] == "call.summary"}
        assert summaries[bad_sid]["end_reason"] == "twilio_protocol_error"
        assert summaries[good_sid]["end_reason"] == "twilio_closed"  # our client hung up normally
