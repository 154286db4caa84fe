"""TLS on the raw socket: it carries bytes both ways, never loses a record a cancelled send
had encrypted, tells a refused certificate from a dead host, and sees the peer's close."""

from __future__ import annotations

import socket
import ssl
import subprocess
from functools import partial
from pathlib import Path

import pytest
import trio

from actors.message_socket import ConnectFailed
from gateway.net.tls import TlsTransport
from gateway.net.transport import RawSocketTransport
from gateway.net.ws_client import open_connection


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (made with the openssl command)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def contexts(certificate: tuple[Path, Path]) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert, key = certificate
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    return ssl.create_default_context(cafile=cert), server


class FirstSendStalls:
    """A raw transport whose first send waits until it is cancelled, having written nothing
    (a peer whose window is shut); later sends go through."""

    def __init__(self, raw: RawSocketTransport) -> None:
        self.raw = raw
        self.stalled = False

    async def receive(self) -> bytes:
        return await self.raw.receive()

    async def send(self, data: bytes) -> None:
        if not self.stalled:
            self.stalled = True
            await trio.sleep_forever()
        await self.raw.send(data)

    def send_nowait(self, data: bytes) -> bool:
        return self.raw.send_nowait(data)

    async def aclose(self) -> None:
        await self.raw.aclose()


async def handshake_pair(
    certificate: tuple[Path, Path], *, stall_client: bool = False
) -> tuple[TlsTransport, TlsTransport, FirstSendStalls | None]:
    """A client and a server over a real socket pair, past their TLS handshake."""
    client_context, server_context = contexts(certificate)
    ours, theirs = socket.socketpair()
    server = TlsTransport(RawSocketTransport(theirs), server_context, server_side=True)
    client = TlsTransport(RawSocketTransport(ours), client_context, server_hostname="127.0.0.1")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.handshake)
        nursery.start_soon(client.handshake)
    stalling = None
    if stall_client:
        stalling = FirstSendStalls(client._raw)  # type: ignore[arg-type]
        client._raw = stalling
    return client, server, stalling


async def read_exactly(transport: TlsTransport, size: int) -> bytes:
    received = bytearray()
    while len(received) < size:
        data = await transport.receive()
        assert data, f"closed after {len(received)} of {size} bytes"
        received += data
    return bytes(received)


async def test_bytes_cross_both_ways_whole_and_in_order(certificate):
    """A megabyte one way (many records, many reads) and a short answer the other way."""
    client, server, _ = await handshake_pair(certificate)
    payload = bytes(range(256)) * 4096
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send, payload)
            assert await read_exactly(server, len(payload)) == payload
        await server.send(b"thanks")
        assert await read_exactly(client, 6) == b"thanks"
    await client.aclose()
    await server.aclose()


async def test_a_send_cancelled_before_anything_left_goes_out_with_the_next(certificate):
    """A record is numbered when it is encrypted: dropping one the kernel never took would
    break the connection for good. The cancelled message leaves first with the next send,
    and the connection lives on."""
    client, server, stalling = await handshake_pair(certificate, stall_client=True)
    with trio.fail_after(10):
        with trio.move_on_after(0.05):
            await client.send(b"x" * 1000)  # the call's send is cancelled while it waits
        assert stalling is not None
        assert stalling.stalled
        await client.send(b"y" * 1000)
        assert await read_exactly(server, 2000) == b"x" * 1000 + b"y" * 1000
        await server.send(b"still here")
        assert await read_exactly(client, 10) == b"still here"
    await client.aclose()
    await server.aclose()


async def test_the_peers_close_notify_ends_the_stream_after_what_it_sent(certificate):
    """A peer's close_notify reads as b"" once what it sent before is read, though its TCP
    connection stays open (here a second descriptor holds it)."""
    client_context, server_context = contexts(certificate)
    ours, theirs = socket.socketpair()
    holding = theirs.dup()
    server = TlsTransport(RawSocketTransport(theirs), server_context, server_side=True)
    client = TlsTransport(RawSocketTransport(ours), client_context, server_hostname="127.0.0.1")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.handshake)
        nursery.start_soon(client.handshake)
    await server.send(b"bye")
    await server.aclose()
    with trio.fail_after(5), holding:
        assert await read_exactly(client, 3) == b"bye"
        assert await client.receive() == b""
    await client.aclose()


async def test_closing_never_waits_for_a_peer_that_stopped_reading(certificate):
    """With the socket buffer full of records the peer does not read, close sends what the
    kernel takes at once and closes: a stalled provider does not hold up the reconnect."""
    client, server, _ = await handshake_pair(certificate)
    assert client.send_nowait(bytes(4 << 20)) is True
    with trio.fail_after(1):  # a guard against a wait for the peer, not a timing target
        await client.aclose()
    await server.aclose()


async def test_a_connection_dropped_without_close_notify_reads_as_closed(certificate):
    """A ragged end (the TCP connection just goes) is b"" too, never an exception."""
    client, server, _ = await handshake_pair(certificate)
    await server._raw.aclose()
    with trio.fail_after(5):
        assert await client.receive() == b""
    await client.aclose()


async def test_an_untrusted_certificate_fails_the_connect_as_a_tls_failure(certificate):
    """A provider URL whose certificate we do not trust is a TLS failure with that reason,
    not 'unreachable'."""
    _, server_context = contexts(certificate)

    async def serve(stream: trio.SocketStream) -> None:
        try:
            tls = await TlsTransport.start(stream, server_context, server_side=True)
        except (OSError, ssl.SSLError):
            return
        await tls.aclose()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, serve, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        with pytest.raises(ConnectFailed, match="failed the TLS handshake"):
            await open_connection(f"wss://127.0.0.1:{port}/v1/realtime", connect_timeout=5)
        nursery.cancel_scope.cancel()


async def test_records_the_kernel_has_no_room_for_wait_for_the_next_send_in_order(certificate):
    """send_nowait encrypts and hands over what the kernel takes; records it has no room for
    are kept (they are numbered) and leave first with the next send."""
    client, server, _ = await handshake_pair(certificate)
    big = bytes(range(256)) * 4096
    assert client.send_nowait(big) is True  # more than the socket buffers hold
    assert client.send_nowait(b"y" * 10) is True  # kept behind what the kernel did not take
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.send, b"z" * 10)
            assert await read_exactly(server, len(big) + 20) == big + b"y" * 10 + b"z" * 10
    await client.aclose()
    await server.aclose()
