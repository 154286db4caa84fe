"""The raw socket transport yields to other tasks on every receive, however much is waiting."""

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
