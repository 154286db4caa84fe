"""Requests no client library would send, from a stranger with no credentials, over raw
sockets: each gets a refusal with a reason, and the gateway goes on serving calls."""

from __future__ import annotations

import random
from urllib.parse import urlencode

import structlog
import trio

from gateway.settings import DEV_TWILIO_AUTH_TOKEN, Settings
from gateway.twilio.signature import compute_signature
from tests.integration.harness import new_call_sid, post_voice, running_gateway, voice_form


async def raw_exchange(settings: Settings, request: bytes, seconds: float = 5) -> bytes:
    """Send `request` as is and read the answer until the gateway closes (or `seconds`)."""
    stream = await trio.open_tcp_stream("127.0.0.1", settings.port)
    answer = b""
    async with stream:
        await stream.send_all(request)
        with trio.move_on_after(seconds):
            while not _complete(answer) and (chunk := await stream.receive_some(65536)):
                answer += chunk
    return answer


def _complete(answer: bytes) -> bool:
    head, found, body = answer.partition(b"\r\n\r\n")
    if not found:
        return False
    lengths = [line for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")]
    return len(body) >= (int(lengths[0].split(b":")[1]) if lengths else 0)


def webhook_request(settings: Settings, signatures: list[bytes]) -> bytes:
    body = urlencode(voice_form(new_call_sid())).encode()
    headers = b"".join(b"X-Twilio-Signature: " + signature + b"\r\n" for signature in signatures)
    return (
        b"POST /twilio/voice HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        + headers
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )


def upgrade_request(signatures: list[bytes]) -> bytes:
    headers = b"".join(b"X-Twilio-Signature: " + signature + b"\r\n" for signature in signatures)
    return (
        b"GET /twilio/media HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + headers + b"\r\n"
    )


async def still_serving(settings: Settings) -> bool:
    response = await post_voice(settings, voice_form(new_call_sid()))
    return response.status_code == 200


async def test_a_webhook_signature_that_is_not_ascii_gets_403_not_a_crash():
    with structlog.testing.capture_logs() as logs:
        async with running_gateway() as settings:
            answer = await raw_exchange(settings, webhook_request(settings, [b"\xe9\xff" + b"A" * 26]))
            assert await still_serving(settings)
    assert answer.startswith(b"HTTP/1.1 403")
    assert not [entry for entry in logs if entry["log_level"] == "error"]


async def test_a_webhook_with_two_signatures_is_refused():
    async with running_gateway() as settings:
        url = settings.public_url + "/twilio/voice"
        good = compute_signature(DEV_TWILIO_AUTH_TOKEN, url, {}).encode()
        answer = await raw_exchange(settings, webhook_request(settings, [good, b"second"]))
        assert await still_serving(settings)
    assert answer.startswith(b"HTTP/1.1 403")
    assert b"more than once" in answer


async def test_a_media_upgrade_with_two_signatures_is_refused_and_the_process_goes_on():
    """websockets' Headers.get raises on a repeated header; this used to end the process."""
    with structlog.testing.capture_logs() as logs:
        async with running_gateway() as settings:
            good = compute_signature(DEV_TWILIO_AUTH_TOKEN, settings.stream_url).encode()
            answer = await raw_exchange(settings, upgrade_request([good, good]))
            assert await still_serving(settings)
    assert answer.startswith(b"HTTP/1.1 403")
    assert any(entry.get("reason") == "X-Twilio-Signature sent more than once" for entry in logs)


async def test_a_media_upgrade_signature_that_is_not_ascii_is_refused():
    async with running_gateway() as settings:
        answer = await raw_exchange(settings, upgrade_request([b"\xe9\xff==="]))
        assert await still_serving(settings)
    assert answer.startswith(b"HTTP/1.1 403")


PREFIXES = [b"", b"GET /twilio/media HTTP/1.1\r\n", b"POST /twilio/voice HTTP/1.1\r\nContent-Length: 9\r\n",
            b"GET /admin/ws HTTP/1.1\r\nUpgrade: websocket\r\n", b"GET /metrics HTTP/1.1\r\n",
            b"\x16\x03\x01\x02\x00\x01", b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 50]  # fmt: skip


async def test_arbitrary_bytes_at_the_listener_cost_one_connection_each():
    """300 connections of arbitrary bytes (after request lines of every kind, or none):
    each is answered or closed, and the gateway still serves a call's webhook afterwards."""
    rng = random.Random(11)
    payloads = [PREFIXES[i % len(PREFIXES)] + rng.randbytes(rng.randint(0, 2048)) for i in range(300)]
    async with running_gateway() as settings:
        for batch in range(0, len(payloads), 30):  # 30 strangers at a time
            async with trio.open_nursery() as nursery:
                for payload in payloads[batch : batch + 30]:
                    nursery.start_soon(raw_exchange, settings, payload, 0.3)
        assert await still_serving(settings)
