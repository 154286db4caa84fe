"""Fuzz targets: every listener and parser of the gateway, fed arbitrary bytes.

Each target takes one input and raises only when the gateway would have failed: an
exception of a kind the input may legitimately cause (a protocol error, a closed socket)
is the expected refusal; anything else, or a 5xx answer, is a crash. The suite runs them
a few hundred times each with hypothesis (tests/unit/test_fuzz.py); `make fuzz` runs them
under atheris, coverage-guided, a million inputs in all (ops/fuzz/run.py).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from functools import cache
from typing import Any
from urllib.parse import parse_qs

import trio
import trio.testing
from websockets.client import ClientProtocol
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from actors import realtime
from actors.errors import RemoteProtocolError
from actors.message_socket import SocketClosed
from actors.twilio_media import TwilioMediaProtocol
from gateway.admin.control_ws import AdminSession, _parse
from gateway.ai.connector import RealtimeConnector
from gateway.ai.endpoints import RealtimeEndpoint
from gateway.net.front_door import _read_request_line
from gateway.net.websocket import LeanWebSocket
from gateway.net.ws_server import read_upgrade
from gateway.process.composition import Gateway
from gateway.settings import DEV_ADMIN_TOKEN, DEV_TWILIO_AUTH_TOKEN, Secret, load_settings
from gateway.twilio.media_endpoint import MediaEndpoint
from gateway.twilio.signature import compute_signature, is_valid_signature
from gateway.twilio.stream_tokens import StreamTokens

CALL_SID = "CA" + "b" * 32
START = (
    '{"event":"start","sequenceNumber":"1","streamSid":"MZ' + "a" * 32 + '","start":{"accountSid":"AC'
    + "0" * 32 + '","streamSid":"MZ' + "a" * 32 + '","callSid":"' + CALL_SID + '","tracks":["inbound"],'
    '"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{}}}'
)  # fmt: skip


class Crash(Exception):
    """The gateway failed an input in a way it must not."""


def text_of(data: bytes) -> str:
    return data.decode("utf-8", "replace")  # what a WebSocket text frame can carry


# ---- sans-I/O parsers ---------------------------------------------------------------


def twilio_media(data: bytes) -> None:
    protocol = TwilioMediaProtocol()
    protocol.receive(START)
    for line in data.split(b"\n")[:8]:
        try:
            protocol.receive(text_of(line))
        except RemoteProtocolError:
            return


def realtime_event(data: bytes) -> None:
    try:
        realtime.parse_server_event(text_of(data))
    except RemoteProtocolError:
        return


def stream_token(data: bytes) -> None:
    tokens = _tokens()
    tokens.redeem(text_of(data), CALL_SID)
    tokens.redeem(tokens.mint(CALL_SID)[: len(data)] + text_of(data), CALL_SID)


def twilio_signature(data: bytes) -> None:
    url, _, signature = text_of(data).partition(" ")
    is_valid_signature("token", "https://gw.example.com/" + url, {"a": [url]}, signature)


@cache
def _tokens() -> StreamTokens:
    return StreamTokens(30)


# ---- byte-level listeners ---------------------------------------------------------------


class ScriptedTransport:
    """Bytes of one input, handed out in chunks of the size its first byte says."""

    def __init__(self, data: bytes) -> None:
        self._chunk = (data[0] % 64 + 1) if data else 1
        self._data = data[1:]
        self.sent = bytearray()

    async def receive(self) -> bytes:
        await trio.lowlevel.checkpoint()
        piece, self._data = self._data[: self._chunk], self._data[self._chunk :]
        return piece

    async def send(self, data: bytes) -> None:
        await trio.lowlevel.checkpoint()
        self.sent += data

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


def _open_server_protocol() -> ServerProtocol:
    client, server = ClientProtocol(parse_uri("ws://gateway/twilio/media")), ServerProtocol(max_size=1 << 16)
    client.send_request(client.connect())
    server.receive_data(b"".join(client.data_to_send()))
    request = server.events_received()[0]
    assert isinstance(request, Request)
    server.send_response(server.accept(request))
    assert isinstance(Response, type)
    server.data_to_send()
    return server


def websocket_frames(data: bytes) -> None:
    """Frames from a client after the handshake: every message, then the socket's end."""

    async def run() -> None:
        socket = LeanWebSocket(ScriptedTransport(data), _open_server_protocol())
        code = 1000
        try:
            for _ in range(64):
                await socket.receive()
        except RemoteProtocolError as exc:
            code = exc.close_code
        except SocketClosed:
            pass
        with trio.fail_after(5):
            await socket.close(code)

    trio.run(run)


def media_upgrade(data: bytes) -> None:
    """The bytes of a media-stream connection, up to its upgrade being accepted or refused."""

    async def run() -> None:
        endpoint = _media_endpoint()
        with trio.fail_after(5):
            upgrade = await read_upgrade(ScriptedTransport(data), max_size=1 << 16)
            if upgrade is None:
                return
            refusal = endpoint._check_signature(upgrade)
            if refusal is not None:
                await upgrade.refuse(403, refusal)
                return
            socket = await upgrade.accept()
            if socket is not None:
                await socket.abort()

    trio.run(run)


def request_line(data: bytes) -> None:
    async def run() -> None:
        sender, receiver = trio.testing.memory_stream_pair()
        await sender.send_all(data)
        await sender.aclose()
        with trio.fail_after(5):
            await _read_request_line(receiver)  # type: ignore[arg-type]

    trio.run(run)


@cache
def _media_endpoint() -> Any:
    # Only the signature check is exercised: it needs the settings, nothing of the call path.
    return MediaEndpoint(_settings(), StreamTokens(30), calls=None, ledger=None, metrics=None, new_call=None)


@cache
def _settings() -> Any:
    env = {"GATEWAY_PORT": "8080", "GATEWAY_AI_PREWARM": "false"}
    return dataclasses.replace(load_settings(None, env), public_url="http://127.0.0.1:8080")


# ---- the HTTP control plane and the admin WebSocket's requests -------------------------


def http_request(data: bytes) -> None:
    """One request to the control plane (webhooks, probes, metrics, admin REST): method,
    path, headers and body all from the input; a 500 or no answer is a crash."""
    method, path, headers, body = _request_parts(data)

    async def run() -> None:
        app = await _gateway()
        status = await _asgi(app, method, path, headers, body)
        if status in (0, 500):  # no answer, or an unhandled error (503 draining and 502 are answers)
            raise Crash(f"{method} {path!r} answered {status or 'nothing'}")

    trio.run(run)


def _request_parts(data: bytes) -> tuple[str, str, list[tuple[bytes, bytes]], bytes]:
    head, _, body = data.partition(b"\n\n")
    lines = head.split(b"\n")
    methods = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
    method = methods[lines[0][0] % len(methods)] if lines[0] else "GET"
    paths = ("/twilio/voice", "/twilio/status", "/healthz", "/readyz", "/metrics", "/admin/calls",
             "/admin/calls/CA" + "c" * 32, "/admin/calls/CA" + "c" * 32 + "/hangup", "/admin/drain",
             "/admin/openapi.json", "/admin/calls/x/say")  # fmt: skip
    path = paths[lines[0][1] % len(paths)] if len(lines[0]) > 1 else "/"
    path += text_of(lines[0][2:]) if len(lines[0]) > 2 and lines[0][2] == ord("/") else ""
    pairs = [line.split(b":", 1) for line in lines[1:] if b":" in line]
    flags = lines[0][0] if lines[0] else 0
    if flags & 0x80:  # an operator's request: past the admin token, into the operations
        pairs.append([b"authorization", b"Bearer " + DEV_ADMIN_TOKEN.encode()])
    if flags & 0x40:  # Twilio's request: past the signature, into the webhook's own checks
        url = "http://127.0.0.1:8080" + path
        form = parse_qs(text_of(body), keep_blank_values=True)
        pairs.append([b"x-twilio-signature", compute_signature(DEV_TWILIO_AUTH_TOKEN, url, form).encode()])
    # Only what h11 lets through to the app: token names, values without CR, LF or NUL.
    if flags & 0x40:
        pairs.append([b"content-type", b"application/x-www-form-urlencoded"])
    headers = [(name.strip().lower(), value.strip()) for name, value in pairs
               if _TOKEN.fullmatch(name.strip()) and not _FORBIDDEN.search(value)]  # fmt: skip
    return method, path, headers, body


_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FORBIDDEN = re.compile(rb"[\r\n\x00]")
_GATEWAY: list[Any] = []


async def _gateway() -> Any:
    """One Gateway (its quart app) for the whole run, built on first use."""
    if not _GATEWAY:
        endpoint = RealtimeEndpoint("ws://127.0.0.1:9/realtime", Secret("k" * 20))
        _GATEWAY.append(Gateway(_settings(), RealtimeConnector(endpoint, None), None))  # type: ignore[arg-type]
    return _GATEWAY[0]


async def _asgi(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    raw_path, _, query = path.encode("utf-8", "replace").partition(b"?")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": raw_path.decode("latin-1"), "raw_path": raw_path, "query_string": query,
        "root_path": "", "headers": [(b"host", b"127.0.0.1:8080"), *headers],
        "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8080), "extensions": {},
    }  # fmt: skip
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status = [0]

    async def receive() -> dict[str, Any]:
        if not messages:
            await trio.sleep_forever()  # the client stays connected until it has its answer
        await trio.lowlevel.checkpoint()
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        await trio.lowlevel.checkpoint()
        if message["type"] == "http.response.start":
            status[0] = message["status"]

    with trio.fail_after(5):
        await app(scope, receive, send)
    return status[0]


def admin_request(data: bytes) -> None:
    """One admin WebSocket request (after authentication): any input gets a reply or none,
    never an exception."""

    async def run() -> None:
        app = await _gateway()
        session = AdminSession(app.settings, app.operations, app.bus)
        replies: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            await trio.lowlevel.checkpoint()
            replies.append(message)

        session._send = send  # type: ignore[method-assign]
        with trio.fail_after(5):
            await session._answer(_parse(text_of(data)))

    trio.run(run)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "twilio_media": twilio_media,
    "realtime_event": realtime_event,
    "stream_token": stream_token,
    "twilio_signature": twilio_signature,
    "websocket_frames": websocket_frames,
    "media_upgrade": media_upgrade,
    "request_line": request_line,
    "http_request": http_request,
    "admin_request": admin_request,
}
