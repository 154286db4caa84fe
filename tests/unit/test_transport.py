"""The raw socket transport: it yields on every receive, never spins, and never sends half a write."""

import socket

import trio
import trio.testing

from gateway.net.transport import RECEIVE_BYTES, RawSocketTransport


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


async def test_what_the_kernel_left_of_a_send_nowait_goes_first_with_the_next_send():
    """send_nowait never waits: when the kernel takes only part of it, the rest is kept and
    goes out ahead of the next send, and no other send_nowait is taken meanwhile."""
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    transport = RawSocketTransport(ours)
    big = bytes(range(256)) * 4096
    received = bytearray()

    def read() -> None:
        theirs.settimeout(5)
        while len(received) < len(big) + 4:
            received.extend(theirs.recv(1 << 16))

    with theirs:
        assert transport.send_nowait(big) is True  # part of it is in the kernel
        assert transport.send_nowait(b"late") is False
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.to_thread.run_sync, read)
            await transport.send(b"tail")
    assert bytes(received) == big + b"tail"
    await transport.aclose()


async def test_what_one_receive_returned_stays_as_it_was_after_another_socket_receives():
    """Every socket receives into one shared buffer; what a receive returns is its own copy."""
    first, first_peer = socket.socketpair()
    second, second_peer = socket.socketpair()
    with first_peer, second_peer:
        first_peer.send(b"first frame")
        second_peer.send(b"SECOND")
        a, b = RawSocketTransport(first), RawSocketTransport(second)
        got = await a.receive()
        assert await b.receive() == b"SECOND"
        assert got == b"first frame"
        assert type(got) is bytes
        await a.aclose()
        await b.aclose()
