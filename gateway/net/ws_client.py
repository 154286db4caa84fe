"""Opening a client WebSocket (the AI socket; the simulator's media stream).

`open_connection` fails one way only, `ConnectFailed`, whatever went wrong (refused,
unreachable, TLS, a handshake answer that is not HTTP or not an upgrade, a timeout),
and closes what it opened before raising. Only the answer's head goes to the protocol
object: bytes after it are frames, handed to the socket's framing layer.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import trio
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus, WebSocketException
from websockets.http11 import Response
from websockets.uri import parse_uri

from actors.message_socket import ConnectFailed
from gateway.net.tls import TlsTransport, client_context
from gateway.net.transport import RawSocketTransport, Transport, keep_alive
from gateway.net.websocket import DEFAULT_MAX_SIZE, LeanWebSocket

Headers = Sequence[tuple[str, str]]
MAX_ANSWER_HEAD_BYTES = 64 * 1024


async def open_connection(
    url: str, headers: Headers = (), *, max_size: int = DEFAULT_MAX_SIZE, connect_timeout: float = 10.0
) -> LeanWebSocket:
    """A client connection to a ws:// or wss:// URL (the caller closes it).

    Raises `ConnectFailed`, with the HTTP status of a refused handshake (401 for a bad key)."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or parts.hostname is None:
        raise ConnectFailed(f"not a WebSocket URL: {url!r}")
    secure = parts.scheme == "wss"
    try:
        with trio.fail_after(connect_timeout):
            transport = await _open(parts.hostname, parts.port or (443 if secure else 80), secure)
    except (trio.TooSlowError, OSError, trio.BrokenResourceError) as exc:
        raise _failed(url, exc, connect_timeout) from None
    try:
        with trio.fail_after(connect_timeout):
            return await _handshake(url, transport, headers, max_size)
    except BaseException as exc:  # a cancelled call's connect too: nothing is left open
        await transport.aclose()
        if isinstance(exc, ConnectFailed | trio.TooSlowError | OSError | trio.BrokenResourceError
                      | WebSocketException):  # fmt: skip
            raise _failed(url, exc, connect_timeout) from None
        raise


def _failed(url: str, exc: BaseException, timeout: float) -> ConnectFailed:
    """The one way opening a socket fails, whatever failed underneath."""
    if isinstance(exc, ConnectFailed):
        return exc
    if isinstance(exc, trio.TooSlowError):
        return ConnectFailed(f"{url} did not answer within {timeout:g} s")
    if isinstance(exc, ssl.SSLError):
        return ConnectFailed(f"{url} failed the TLS handshake: {exc}")
    if isinstance(exc, WebSocketException):
        return ConnectFailed(f"{url} refused the handshake: {exc}")
    return ConnectFailed(f"{url} unreachable: {type(exc).__name__}: {exc}")


@asynccontextmanager
async def connect(
    url: str, headers: Headers = (), *, max_size: int = DEFAULT_MAX_SIZE, connect_timeout: float = 10.0
) -> AsyncIterator[LeanWebSocket]:
    """`open_connection` as a context manager that closes the socket."""
    socket_ = await open_connection(url, headers, max_size=max_size, connect_timeout=connect_timeout)
    try:
        yield socket_
    finally:
        await socket_.close()


async def _open(host: str, port: int, secure: bool) -> Transport:
    tcp = await trio.open_tcp_stream(host, port)
    keep_alive(tcp.socket)
    if secure:
        return await TlsTransport.start(tcp, client_context(), server_hostname=host)
    return RawSocketTransport.of(tcp)


async def _handshake(url: str, transport: Transport, headers: Headers, max_size: int) -> LeanWebSocket:
    protocol = ClientProtocol(parse_uri(url), max_size=max_size)
    request = protocol.connect()
    for name, value in headers:
        request.headers[name] = value
    protocol.send_request(request)
    await transport.send(b"".join(protocol.data_to_send()))
    response, rest = await _read_answer(url, transport, protocol)
    if protocol.handshake_exc is not None:
        if isinstance(protocol.handshake_exc, InvalidStatus):
            status = response.status_code
            raise ConnectFailed(f"{url} rejected the handshake with HTTP {status}", status)
        raise ConnectFailed(f"{url} refused the handshake: {protocol.handshake_exc}")
    return LeanWebSocket(transport, protocol, initial=rest)


async def _read_answer(url: str, transport: Transport, protocol: ClientProtocol) -> tuple[Response, bytes]:
    """The handshake answer, and the bytes after its head (frames, when it is an upgrade)."""
    buffer = b""
    while (end := buffer.find(b"\r\n\r\n")) < 0:
        if len(buffer) > MAX_ANSWER_HEAD_BYTES:
            raise ConnectFailed(f"{url} answered with an HTTP head over {MAX_ANSWER_HEAD_BYTES} bytes")
        data = await transport.receive()
        if not data:
            raise ConnectFailed(f"{url} closed the connection during the handshake")
        buffer += data
    head, rest = buffer[: end + 4], buffer[end + 4 :]
    protocol.receive_data(head)
    response = _response(protocol)
    if response is None and protocol.handshake_exc is None:  # an answer with a body: no upgrade
        response, rest = await _read_body(transport, protocol, rest or await transport.receive()), b""
    if response is None:
        raise ConnectFailed(f"{url} answered with something that is not HTTP: {protocol.handshake_exc}")
    return response, rest


async def _read_body(transport: Transport, protocol: ClientProtocol, data: bytes) -> Response | None:
    while True:
        if data:
            protocol.receive_data(data)
        else:
            protocol.receive_eof()  # a body that ends with the connection
        response = _response(protocol)
        if response is not None or protocol.handshake_exc is not None or not data:
            return response
        data = await transport.receive()


def _response(protocol: ClientProtocol) -> Response | None:
    return next((event for event in protocol.events_received() if isinstance(event, Response)), None)
