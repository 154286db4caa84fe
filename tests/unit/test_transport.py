"""The transports: the raw socket yields on every receive and never spins; TLS survives a cancelled send."""

import socket
import ssl
import subprocess

import pytest
import trio
import trio.testing

from gateway.net.transport import RECEIVE_BYTES, RawSocketTransport, StreamTransport


async def test_every_receive_is_a_checkpoint_even_when_the_buffer_stays_full():
    """A peer that keeps our receive buffer full (a ping flood) gets no receive that runs
    without letting the other calls on the loop have their turn."""
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    transport = RawSocketTransport(ours)
    with theirs:
        sent = 0
        try:
            while sent < 8 * RECEIVE_BYTES:
                sent += theirs.send(b"\x89\x00" * 4096)  # empty pings
        except BlockingIOError:
            pass
        for _ in range(sent // RECEIVE_BYTES):  # each read fills the buffer: no wait is needed
            with trio.testing.assert_checkpoints():
                assert await transport.receive()
    await transport.aclose()


async def test_a_write_the_kernel_took_part_of_is_finished_even_if_cancelled():
    """Cancelling a send half way would leave the peer half a frame; once any byte has left,
    the rest follows (bounded), so the peer reads everything that was sent."""
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    transport = RawSocketTransport(ours)
    data = bytes(range(256)) * 4096  # 1 MiB: far more than the buffers hold
    received = bytearray()

    def read() -> None:
        theirs.settimeout(5)  # what was cut off never comes: fail, not hang
        while len(received) < len(data):
            received.extend(theirs.recv(1 << 16))

    with theirs:
        async with trio.open_nursery() as nursery:
            sending = trio.CancelScope()

            async def send() -> None:
                with sending:
                    await transport.send(data)

            nursery.start_soon(send)
            await trio.sleep(0.05)  # part of it is in the kernel, the rest waits for room
            sending.cancel()  # the call ends
            await trio.sleep(0.05)
            await trio.to_thread.run_sync(read)  # only now does the peer read
        assert bytes(received) == data
    await transport.aclose()


async def test_an_empty_write_returns_at_once():
    """The kernel takes nothing from an empty send; a transport that waited until it took
    something would spin on a writable socket for ever."""
    ours, theirs = socket.socketpair()
    transport = RawSocketTransport(ours)
    with theirs, trio.fail_after(1):  # a guard against the spin, not a timing target
        await transport.send(b"")
    await transport.aclose()


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for 127.0.0.1 and its key (made with the openssl command)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_a_cancelled_tls_send_still_goes_out_whole_and_the_connection_lives_on(certificate):
    """trio breaks a TLS stream for good when a send is cancelled (it cannot tell how much
    of the record left), so a send, once asked for, finishes even if its sender is
    cancelled: a response the AI cuts short must not cost the call its provider socket."""
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    client_end, server_end = trio.testing.memory_stream_pair()
    client = trio.SSLStream(client_end, ssl.create_default_context(cafile=cert), server_hostname="127.0.0.1")
    server = trio.SSLStream(server_end, server_context, server_side=True)
    transport = StreamTransport(client)
    received = bytearray()

    async def serve() -> None:
        while len(received) < 2000:
            received.extend(await server.receive_some())

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            with trio.CancelScope() as scope:
                scope.cancel()  # the sender is cancelled: what it asked to send leaves anyway
                await transport.send(b"x" * 1000)
            await transport.send(b"y" * 1000)
    assert received == b"x" * 1000 + b"y" * 1000
