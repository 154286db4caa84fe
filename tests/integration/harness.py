"""A real gateway on a loopback port, and a minimal Twilio side to poke it with."""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import httpx2
import trio
import trio_websocket

from gateway.process.serving import Gateway, serve
from gateway.settings import DEV_TWILIO_ACCOUNT_SID, DEV_TWILIO_AUTH_TOKEN, Settings, load_settings
from gateway.simulator.caller import parse_connect_stream
from gateway.twilio.signature import compute_signature


@asynccontextmanager
async def running(env: dict[str, str] | None = None, **overrides: object) -> AsyncIterator[Gateway]:
    """Serve on an ephemeral loopback port until the block ends; `overrides` replace settings."""
    env = {"GATEWAY_PORT": "0", "GATEWAY_DRAIN_SECONDS": "0", **(env or {})}  # stop ends calls at once
    # The simulated callers share this process and its event loop with the gateway, so its
    # lag and CPU are theirs too: load-based admission is off unless a test turns it on.
    overrides = {"max_loop_lag_ms": 0.0, "max_cpu_share": 0.0, **overrides}
    settings = dataclasses.replace(load_settings(None, env), **overrides)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        gateway = await nursery.start(partial(serve, settings, stop=stop, handle_signals=False))
        try:
            yield gateway
        finally:
            stop.set()


@asynccontextmanager
async def running_gateway(env: dict[str, str] | None = None, **overrides: object) -> AsyncIterator[Settings]:
    """As `running`, for tests that need only the bound settings."""
    async with running(env, **overrides) as gateway:
        yield gateway.settings


def new_call_sid() -> str:
    return "CA" + secrets.token_hex(16)


def voice_form(call_sid: str, account_sid: str = DEV_TWILIO_ACCOUNT_SID) -> dict[str, str]:
    return {
        "CallSid": call_sid,
        "AccountSid": account_sid,
        "From": "+15005550006",
        "To": "+15005550001",
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
    }


async def post_voice(
    settings: Settings,
    form: dict[str, str],
    signature: str | None = "sign",
    token: str = DEV_TWILIO_AUTH_TOKEN,
    query: str = "",
) -> httpx2.Response:
    url = settings.public_url + "/twilio/voice" + query
    headers = {}
    if signature == "sign":
        headers["X-Twilio-Signature"] = compute_signature(token, url, {k: [v] for k, v in form.items()})
    elif signature is not None:
        headers["X-Twilio-Signature"] = signature
    async with httpx2.AsyncClient() as client:
        return await client.post(url, data=form, headers=headers)


async def stream_token(settings: Settings, call_sid: str) -> str:
    """Answer the webhook for `call_sid` and return the one-time token from the TwiML."""
    response = await post_voice(settings, voice_form(call_sid))
    assert response.status_code == 200, response.text
    _, parameters = parse_connect_stream(response.text)
    return parameters["token"]


@asynccontextmanager
async def media_stream(
    settings: Settings, signature: str | None = "sign"
) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    headers = []
    if signature == "sign":
        signature = compute_signature(DEV_TWILIO_AUTH_TOKEN, settings.stream_url)
    if signature is not None:
        headers.append((b"X-Twilio-Signature", signature.encode()))
    async with trio_websocket.open_websocket_url(settings.stream_url, extra_headers=headers) as ws:
        yield ws


def start_message(call_sid: str, token: str | None, stream_sid: str = "MZ" + "a" * 32) -> str:
    params = {"token": token} if token is not None else {}
    return json.dumps(
        {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": stream_sid,
            "start": {
                "accountSid": DEV_TWILIO_ACCOUNT_SID,
                "streamSid": stream_sid,
                "callSid": call_sid,
                "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": params,
            },
        }
    )


async def close_code(ws: trio_websocket.WebSocketConnection, seconds: float = 5) -> int | None:
    """Read until the gateway closes the stream; return its close code."""
    with trio.fail_after(seconds):
        try:
            while True:
                await ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            return exc.reason.code if exc.reason else None
