"""WebSockets driven by the `websockets` sans-I/O protocol, with as few trio steps as possible.

The media path's cost is dominated by how often the event loop has to switch tasks per
message, not by framing. Measured under load (ops/bench), the hypercorn ASGI path took
about 3 task steps per inbound Twilio frame (server task, ASGI queue, reader) and
trio-websocket 3 per outbound append (lock, send, its reader task). Here:

- the protocol object frames and parses synchronously;
- on a plain TCP socket, bytes go straight to the non-blocking stdlib socket: a send
  that fits in the kernel buffer completes without yielding, a receive yields only when
  nothing is waiting (`trio.lowlevel.wait_readable/wait_writable`, public trio API);
- TLS (a `wss://` provider) goes through a trio `SSLStream` instead;
- concurrent senders keep their order: a send frames at once, and whichever sender
  is already writing flushes what the others queued;
- every failure becomes `SocketClosed`; a binary or oversized frame is a
  `RemoteProtocolError` with the close code to answer.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Protocol
from urllib.parse import urlsplit

import trio
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus, PayloadTooBig, ProtocolError
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

try:
    from websockets.speedups import apply_mask
except ImportError:  # a platform without the wheel's C extension
    from websockets.utils import apply_mask

from actors.errors import CloseCode, RemoteProtocolError
from actors.message_socket import ConnectFailed, SocketClosed

CLOSE_TIMEOUT_SECONDS = 2.0
RECEIVE_BYTES = 65536
Headers = Sequence[tuple[str, str]]


class Transport(Protocol):
    async def receive(self) -> bytes:
        """Bytes from the peer; b"" once the connection is closed or broken."""
        ...

    async def send(self, data: bytes) -> None:
        """All of `data`; raise OSError (or a trio resource error) if the connection broke."""
        ...

    async def aclose(self) -> None: ...


class RawSocketTransport:
    """A connected stdlib TCP socket, driven without trio's stream layer."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self._more_waiting = True  # a fresh connection may already hold the request

    async def receive(self) -> bytes:
        # At 50 frames a second the next frame is rarely there yet: wait first, unless the
        # last read filled the buffer. Saves a failed recv and its exception per frame.
        if not self._more_waiting:
            await trio.lowlevel.wait_readable(self.sock)
        while True:
            try:
                data = self.sock.recv(RECEIVE_BYTES)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(self.sock)
                continue
            except OSError:
                return b""
            self._more_waiting = len(data) == RECEIVE_BYTES
            return data

    async def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[self.sock.send(view) :]
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self.sock)

    async def aclose(self) -> None:
        if self.sock.fileno() >= 0:
            trio.lowlevel.notify_closing(self.sock)
            self.sock.close()

    @classmethod
    def of(cls, stream: trio.SocketStream) -> RawSocketTransport:
        """Take over the socket of a trio stream (from a trio listener or `open_tcp_stream`)."""
        raw = socket.socket(fileno=stream.socket.detach())
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(raw)


class StreamTransport:
    """A trio stream (TLS): the general path."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self._stream = stream

    async def receive(self) -> bytes:
        try:
            return bytes(await self._stream.receive_some(RECEIVE_BYTES))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return b""

    async def send(self, data: bytes) -> None:
        await self._stream.send_all(data)

    async def aclose(self) -> None:
        with trio.move_on_after(CLOSE_TIMEOUT_SECONDS, shield=True):
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                await self._stream.aclose()


class MaskPool:
    """Client masking keys from the OS's strong source, 1024 per `os.urandom` call
    (RFC 6455 5.3 asks for unpredictable keys; one syscall per frame cost 3% at load)."""

    def __init__(self, keys: int = 1024) -> None:
        self._size = 4 * keys
        self._pool = os.urandom(self._size)
        self._next = 0

    def key(self) -> bytes:
        if self._next >= self._size:
            self._pool, self._next = os.urandom(self._size), 0
        start = self._next
        self._next += 4
        return self._pool[start : start + 4]


MASKS = MaskPool()


class LeanWebSocket:
    """An open WebSocket (either side) as a message socket.

    Whole, unfragmented text frames (every frame of both media protocols) are framed and
    parsed here with the C unmasking of `websockets.speedups`; anything else (control
    frames, fragments, binary, oversized or malformed frames) goes through the protocol
    object, one whole frame at a time, so its state is always that of a frame boundary.
    """

    def __init__(self, transport: Transport, protocol: ClientProtocol | ServerProtocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._client = isinstance(protocol, ClientProtocol)
        self._max_size = protocol.max_message_size or 1 << 20
        self._partial: list[bytes] = []  # bytes of a frame not yet complete
        self._partial_size = 0
        self._needed = 0  # bytes that frame needs before it is worth parsing again
        self._framing = True  # False once the protocol object reads the stream itself
        self._messages: deque[str] = deque()
        self._fragments: list[bytes] = []
        self._outgoing: list[bytes] = []
        self._flushing = False
        self._reading = False
        self._closed: SocketClosed | None = None

    # ---- MessageSocket ------------------------------------------------------------

    async def receive(self) -> str:
        while not self._messages:
            if self._closed is not None:
                raise self._closed
            await self._read()
        return self._messages.popleft()

    async def send(self, message: str) -> None:
        if self._closed is not None:
            raise self._closed
        if self._protocol.state is State.OPEN:
            self._outgoing.append(self._text_frame(message.encode()))
        else:
            self._protocol.send_text(message.encode())  # raises the protocol's own error
        await self._flush()

    def _text_frame(self, payload: bytes) -> bytes:
        n = len(payload)
        length = bytes((n,)) if n < 126 else b"\x7e" + n.to_bytes(2) if n < 65536 else b"\x7f" + n.to_bytes(8)
        if not self._client:
            return b"\x81" + length + payload
        key = MASKS.key()
        return b"\x81" + bytes((length[0] | 0x80,)) + length[1:] + key + apply_mask(payload, key)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed is None:
            with trio.move_on_after(CLOSE_TIMEOUT_SECONDS, shield=True):
                with contextlib.suppress(ProtocolError, SocketClosed, RemoteProtocolError):
                    self._protocol.send_close(code, reason.encode()[:123].decode("utf-8", "ignore"))
                    await self._flush()
                    while not self._reading and self._closed is None:  # the peer's close frame
                        await self._read()
            self._closed = self._closed or SocketClosed(code, "closed")
        await self._transport.aclose()

    # ---- bytes in and out ---------------------------------------------------------

    async def _read(self) -> None:
        self._reading = True
        try:
            data = await self._transport.receive()
        finally:
            self._reading = False
        if not data:
            self._protocol.receive_eof()
        elif self._framing:
            self._split_frames(data)
        else:
            self._protocol.receive_data(data)
        self._take_events()
        if isinstance(self._protocol.parser_exc, PayloadTooBig):
            raise RemoteProtocolError("message too big", CloseCode.MESSAGE_TOO_BIG)
        await self._flush()  # pongs, the close handshake
        if not data or self._protocol.close_rcvd is not None or self._protocol.state is State.CLOSED:
            self._closed = self._closed or self._peer_closed()

    def _split_frames(self, data: bytes) -> None:
        """Whole frames out of the byte stream: simple text frames here, others to the protocol."""
        if self._partial:
            self._partial.append(data)
            self._partial_size += len(data)
            if self._partial_size < self._needed:
                return  # a large frame arriving in pieces: join them once, not per piece
            data = b"".join(self._partial)
        buffer, start, end = data, 0, len(data)
        self._needed = 0
        while start < end and self._framing:
            header = _frame_header(buffer, start, end)
            if header is None:
                break  # incomplete header
            size, offset, key = header
            if size > self._max_size or (key is not None) is self._client:  # clients mask, servers not
                self._hand_over(buffer[start:])  # the protocol answers it (1009, 1002)
                return
            if offset + size > end:
                self._needed = offset + size - start
                break  # incomplete payload
            if buffer[start] == 0x81 and not self._fragments and self._protocol.state is State.OPEN:
                payload = buffer[offset : offset + size]
                self._append_text(apply_mask(payload, key) if key is not None else payload)
            else:
                self._protocol.receive_data(buffer[start : offset + size])
                self._take_events()
            start = offset + size
        rest = buffer[start:] if self._framing else b""
        self._partial, self._partial_size = ([rest], len(rest)) if rest else ([], 0)

    def _hand_over(self, rest: bytes) -> None:
        self._framing, self._partial, self._partial_size = False, [], 0
        self._protocol.receive_data(rest)

    def _take_events(self) -> None:
        for event in self._protocol.events_received():
            if isinstance(event, Frame):
                self._take(event)

    def _append_text(self, payload: bytes) -> None:
        try:
            self._messages.append(payload.decode())
        except UnicodeDecodeError as exc:
            raise RemoteProtocolError(
                f"text frame is not UTF-8: {exc.reason}", CloseCode.INVALID_PAYLOAD
            ) from None

    def _take(self, frame: Frame) -> None:
        if frame.opcode is Opcode.BINARY:
            raise RemoteProtocolError("binary frame where JSON text is expected", CloseCode.UNSUPPORTED_DATA)
        if frame.opcode is Opcode.TEXT or (frame.opcode is Opcode.CONT and self._fragments):
            if frame.fin and not self._fragments:
                self._append_text(bytes(frame.data))
                return
            self._fragments.append(bytes(frame.data))
            if frame.fin:
                message = b"".join(self._fragments)
                self._fragments.clear()
                self._append_text(message)

    async def _flush(self) -> None:
        self._outgoing += self._protocol.data_to_send()
        if self._flushing:
            return  # the sender already writing takes ours too, in order
        self._flushing = True
        try:
            while self._outgoing:
                data = b"".join(self._outgoing)
                self._outgoing.clear()
                if data:
                    await self._transport.send(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self._closed = self._closed or SocketClosed(1006, f"connection lost: {exc!r}")
            raise self._closed from None
        finally:
            self._flushing = False

    def _peer_closed(self) -> SocketClosed:
        received = self._protocol.close_rcvd
        if received is None:
            return SocketClosed(1006, "connection dropped without a close frame")
        return SocketClosed(received.code, received.reason)


def _frame_header(buffer: bytes, start: int, end: int) -> tuple[int, int, bytes | None] | None:
    """(payload size, payload offset, masking key or None) of the frame at `start`, or None
    while its header is incomplete."""
    if end - start < 2:
        return None
    second = buffer[start + 1]
    size, offset = second & 0x7F, start + 2
    if size == 126:
        if end - offset < 2:
            return None
        size, offset = int.from_bytes(buffer[offset : offset + 2]), offset + 2
    elif size == 127:
        if end - offset < 8:
            return None
        size, offset = int.from_bytes(buffer[offset : offset + 8]), offset + 8
    if not second & 0x80:
        return size, offset, None
    if end - offset < 4:
        return None
    return size, offset + 4, buffer[offset : offset + 4]


# ---- the client side ----------------------------------------------------------------


async def open_connection(
    url: str, headers: Headers = (), *, max_size: int = 1 << 20, connect_timeout: float = 10.0
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
            protocol = ClientProtocol(parse_uri(url), max_size=max_size)
            request = protocol.connect()
            for name, value in headers:
                request.headers[name] = value
            protocol.send_request(request)
            socket_ = LeanWebSocket(transport, protocol)
            await socket_._flush()
            await _handshake(url, socket_, transport, protocol)
    except trio.TooSlowError:
        raise ConnectFailed(f"{url} did not answer within {connect_timeout:g} s") from None
    except (OSError, SocketClosed, trio.BrokenResourceError) as exc:
        cause = exc.__cause__ or exc
        raise ConnectFailed(f"{url} unreachable: {type(cause).__name__}: {cause}") from None
    return socket_


@asynccontextmanager
async def connect(
    url: str, headers: Headers = (), *, max_size: int = 1 << 20, connect_timeout: float = 10.0
) -> AsyncIterator[LeanWebSocket]:
    """`open_connection` as a context manager that closes the socket."""
    socket_ = await open_connection(url, headers, max_size=max_size, connect_timeout=connect_timeout)
    try:
        yield socket_
    finally:
        await socket_.close()


async def _open(host: str, port: int, secure: bool) -> Transport:
    if secure:
        stream = await trio.open_ssl_over_tcp_stream(
            host, port, ssl_context=ssl.create_default_context(), https_compatible=True
        )
        return StreamTransport(stream)
    return RawSocketTransport.of(await trio.open_tcp_stream(host, port))


async def _handshake(
    url: str, socket_: LeanWebSocket, transport: Transport, protocol: ClientProtocol
) -> None:
    events: list[object] = []
    while not any(isinstance(event, Response) for event in events):
        data = await transport.receive()
        if not data:
            await transport.aclose()
            raise ConnectFailed(f"{url} closed the connection during the handshake")
        protocol.receive_data(data)
        events += protocol.events_received()
    for event in events:
        if isinstance(event, Response) and protocol.handshake_exc is not None:
            await transport.aclose()
            if isinstance(protocol.handshake_exc, InvalidStatus):
                status = event.status_code
                raise ConnectFailed(f"{url} rejected the handshake with HTTP {status}", status)
            raise ConnectFailed(f"{url} refused the handshake: {protocol.handshake_exc}")
        if isinstance(event, Frame):
            socket_._take(event)


# ---- the server side ----------------------------------------------------------------


class Upgrade:
    """An upgrade request read from a fresh connection, to accept or refuse."""

    def __init__(self, transport: Transport, protocol: ServerProtocol, request: Request) -> None:
        self.request = request
        self._socket = LeanWebSocket(transport, protocol)
        self._protocol = protocol

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)

    async def accept(self) -> LeanWebSocket | None:
        """Answer 101; the socket, or None if the request was not a valid upgrade (400 sent)."""
        self._protocol.send_response(self._protocol.accept(self.request))
        with contextlib.suppress(SocketClosed):
            await self._socket._flush()
        if self._protocol.handshake_exc is not None or self._socket._closed is not None:
            await self._socket.close()
            return None
        return self._socket

    async def refuse(self, status: int, text: str) -> None:
        """Answer with an HTTP error instead of the upgrade, then close."""
        self._protocol.send_response(self._protocol.reject(status, text))
        with contextlib.suppress(SocketClosed):
            await self._socket._flush()
        await self._socket._transport.aclose()


async def read_upgrade(transport: Transport, *, max_size: int = 1 << 20) -> Upgrade | None:
    """Read the upgrade request from a fresh connection; None if the client went away."""
    protocol = ServerProtocol(max_size=max_size)
    while True:
        data = await transport.receive()
        if not data:
            await transport.aclose()
            return None
        protocol.receive_data(data)
        events = protocol.events_received()
        if events:
            request = events[0]
            assert isinstance(request, Request)
            return Upgrade(transport, protocol, request)
