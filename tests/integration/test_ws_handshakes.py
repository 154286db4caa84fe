"""WebSocket handshakes over real loopback sockets: what a peer sends around them.

Bytes that arrive together with a handshake belong to the frames that follow it; a
handshake answer that is not HTTP, never comes, or is followed by a frame the protocol
refuses fails the one connection with a clear error and closes what was opened.
"""

from __future__ import annotations

import base64
import hashlib
import socket
from functools import partial

import pytest
import trio
from websockets.client import ClientProtocol
from websockets.uri import parse_uri

from actors.errors import CloseCode, RemoteProtocolError
from actors.message_socket import ConnectFailed
from gateway.net.transport import RawSocketTransport
from gateway.net.ws_client import open_connection
from gateway.net.ws_server import MAX_REQUEST_HEAD_BYTES, read_upgrade

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_answer(request: bytes) -> bytes:
    key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key:"))  # fmt: skip
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")  # fmt: skip


async def read_head(stream: trio.SocketStream) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head:
        head += await stream.receive_some(65536)
    return head


async def serve_once(nursery: trio.Nursery, answer) -> tuple[int, trio.Event]:
    """A TCP server that hands its first connection to `answer`; the event is set once the
    client has closed that connection."""
    closed = trio.Event()

    async def handler(stream: trio.SocketStream) -> None:
        try:
            await answer(stream)
            while await stream.receive_some(65536):
                pass
        except trio.BrokenResourceError:
            pass
        closed.set()

    listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    return listeners[0].socket.getsockname()[1], closed


class TestClientHandshake:
    async def test_a_frame_sent_with_the_answer_is_the_first_message(self, nursery):
        async def answer(stream):
            await stream.send_all(accept_answer(await read_head(stream)) + b"\x81\x05hello")

        port, _ = await serve_once(nursery, answer)
        socket_ = await open_connection(f"ws://127.0.0.1:{port}/")
        assert await socket_.receive() == "hello"
        await socket_.abort()

    async def test_an_answer_that_is_not_http_fails_and_closes_the_connection(self, nursery):
        async def answer(stream):
            await read_head(stream)
            await stream.send_all(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")

        port, closed = await serve_once(nursery, answer)
        with pytest.raises(ConnectFailed, match="not HTTP"):
            await open_connection(f"ws://127.0.0.1:{port}/")
        with trio.fail_after(5):
            await closed.wait()

    async def test_a_server_that_never_answers_times_out_and_is_closed(self, nursery):
        async def answer(stream):
            await read_head(stream)

        port, closed = await serve_once(nursery, answer)
        with pytest.raises(ConnectFailed, match="did not answer"):
            await open_connection(f"ws://127.0.0.1:{port}/", connect_timeout=0.3)
        with trio.fail_after(5):
            await closed.wait()

    async def test_a_connect_cancelled_mid_handshake_closes_its_connection(self, nursery):
        """The call hangs up while its AI socket is still connecting: nothing is left open."""

        async def answer(stream):
            await read_head(stream)

        port, closed = await serve_once(nursery, answer)
        with trio.move_on_after(0.3):
            await open_connection(f"ws://127.0.0.1:{port}/", connect_timeout=30)
        with trio.fail_after(5):
            await closed.wait()

    async def test_a_refusal_keeps_its_http_status(self, nursery):
        async def answer(stream):
            await read_head(stream)
            await stream.send_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 3\r\n\r\nno\n")

        port, _ = await serve_once(nursery, answer)
        with pytest.raises(ConnectFailed) as failed:
            await open_connection(f"ws://127.0.0.1:{port}/")
        assert failed.value.status == 401

    async def test_a_binary_frame_after_the_answer_is_a_protocol_error_of_that_socket(self, nursery):
        async def answer(stream):
            await stream.send_all(accept_answer(await read_head(stream)) + b"\x82\x01\x00")

        port, _ = await serve_once(nursery, answer)
        socket_ = await open_connection(f"ws://127.0.0.1:{port}/")
        with pytest.raises(RemoteProtocolError) as refused:
            await socket_.receive()
        assert refused.value.close_code == CloseCode.UNSUPPORTED_DATA
        await socket_.abort()


def client_upgrade() -> tuple[ClientProtocol, bytes]:
    client = ClientProtocol(parse_uri("ws://gateway/twilio/media"))
    client.send_request(client.connect())
    return client, b"".join(client.data_to_send())


class TestServerHandshake:
    async def test_frames_sent_with_the_request_are_read_after_the_accept(self):
        client, request = client_upgrade()
        client.state = client.state.OPEN  # frames may be pipelined behind the request
        client.send_text(b"first")
        ours, theirs = socket.socketpair()
        with theirs:
            theirs.sendall(request + b"".join(client.data_to_send()))
            upgrade = await read_upgrade(RawSocketTransport(ours))
            assert upgrade is not None
            websocket = await upgrade.accept()
            assert websocket is not None
            assert await websocket.receive() == "first"
            await websocket.abort()

    async def test_a_request_head_over_the_limit_is_refused_with_431(self):
        ours, theirs = socket.socketpair()
        with theirs:
            theirs.sendall(b"GET /twilio/media HTTP/1.1\r\nX-Padding: " + b"a" * MAX_REQUEST_HEAD_BYTES)
            assert await read_upgrade(RawSocketTransport(ours)) is None
            assert theirs.recv(100).startswith(b"HTTP/1.1 431 ")

    async def test_a_request_that_is_not_http_is_refused_with_400(self):
        ours, theirs = socket.socketpair()
        with theirs:
            theirs.sendall(b"\x16\x03\x01 hello\r\n\r\n")
            assert await read_upgrade(RawSocketTransport(ours)) is None
            assert theirs.recv(100).startswith(b"HTTP/1.1 400 ")
