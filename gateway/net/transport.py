"""The byte transport under the lean WebSocket: a raw TCP socket (`gateway.net.tls` adds TLS).

The media path's cost is dominated by how often the event loop switches tasks per
message, so on plain TCP the bytes go straight to the non-blocking stdlib socket: a send
that fits in the kernel buffer completes without yielding, and a receive waits for
readability first unless the last read filled the buffer (`trio.lowlevel.wait_readable`
and `wait_writable`, public trio API).
"""

from __future__ import annotations

import errno
import socket
from typing import Protocol

import trio

CLOSE_TIMEOUT_SECONDS = 2.0
RECEIVE_BYTES = 65536
SEND_SECONDS = 10.0  # as long as TCP_USER_TIMEOUT gives a peer that stops acknowledging
# A peer that stops acknowledging is dropped by the kernel after 10 s; an idle connection
# is probed after 10 s, every 5 s, 3 times (a NAT that forgot the flow, a crashed host).
TCP_USER_TIMEOUT_MS = 10_000
KEEPALIVE = ((socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),)
KEEPALIVE_LINUX = (
    ("TCP_KEEPIDLE", 10),
    ("TCP_KEEPINTVL", 5),
    ("TCP_KEEPCNT", 3),
    ("TCP_USER_TIMEOUT", TCP_USER_TIMEOUT_MS),
)


# Every receive lands here first and leaves as a bytes copy of what arrived, before any
# await, so one buffer serves every socket of the (single-threaded) event loop: a 64 KiB
# allocation shrunk to the frame's size at every receive costs CPU and fragments the heap.
_RECEIVED = memoryview(bytearray(RECEIVE_BYTES))


def keep_alive(sock: socket.socket | trio.socket.SocketType) -> None:
    """Kernel liveness on an outgoing connection: keepalive probes and TCP_USER_TIMEOUT."""
    for level, option, value in KEEPALIVE:
        sock.setsockopt(level, option, value)
    for name, value in KEEPALIVE_LINUX:
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


class Transport(Protocol):
    async def receive(self) -> bytes:
        """Bytes from the peer; b"" once the connection is closed or broken."""
        ...

    async def send(self, data: bytes) -> None:
        """All of `data`; raise OSError (or a trio resource error) if the connection broke."""
        ...

    def send_nowait(self, data: bytes) -> bool:
        """`data` without waiting, if it can go now (else False and nothing sent): a True
        send may leave a rest that the next send writes first."""
        ...

    async def aclose(self) -> None: ...


class RawSocketTransport:
    """A connected stdlib TCP socket, driven without trio's stream layer."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self._more_waiting = True  # a fresh connection may already hold the request
        self._rest = b""  # what the kernel did not take of a send_nowait: it goes first

    async def receive(self) -> bytes:
        # At 50 frames a second the next frame is rarely there yet: wait first, unless the
        # last read filled the buffer. Saves a failed recv and its exception per frame.
        try:
            if self._more_waiting:
                # More is already there: read without waiting, but still let the other calls
                # run (a peer that keeps our buffer full, say with a ping flood, must not
                # hold the event loop).
                await trio.lowlevel.checkpoint()
            else:
                await trio.lowlevel.wait_readable(self.sock)
            while True:
                try:
                    size = self.sock.recv_into(_RECEIVED)
                except BlockingIOError:
                    await trio.lowlevel.wait_readable(self.sock)
                    continue
                self._more_waiting = size == RECEIVE_BYTES
                return _RECEIVED[:size].tobytes()
        except (OSError, trio.ClosedResourceError):  # broken, or closed by another task
            return b""

    async def send(self, data: bytes) -> None:
        """All of `data`, never half: once the kernel has taken part of it, the rest is sent
        shielded from cancellation (a peer left with half a frame could not read on), for
        at most SEND_SECONDS; the usual send is one syscall and no await at all. What a
        `send_nowait` left over goes first; a send cancelled before the kernel took any
        byte leaves it there."""
        if self._rest:
            data = self._rest + data
        if not data:
            return  # the kernel takes nothing from an empty write: waiting for it would spin
        sent = self._try_send(data)
        while not sent:  # nothing written yet: waiting may be cancelled safely
            await trio.lowlevel.wait_writable(self.sock)
            sent = self._try_send(data)
        self._rest = b""
        if sent < len(data):
            await self._send_rest(memoryview(data)[sent:])

    def send_nowait(self, data: bytes) -> bool:
        """Hand `data` to the kernel without waiting: True if it took it, or took part and the
        rest is kept to go first with the next send; False, nothing sent, if it had no room
        or a rest is still waiting. One sender at a time, as for `send`."""
        if self._rest:
            return False
        sent = self._try_send(data)
        if not sent:
            return False
        if sent < len(data):
            self._rest = data[sent:]
        return True

    def _try_send(self, data: bytes) -> int:
        try:
            return self.sock.send(data)
        except BlockingIOError:
            return 0

    async def _send_rest(self, view: memoryview) -> None:
        with trio.move_on_after(SEND_SECONDS, shield=True) as late:
            while view:
                try:
                    view = view[self.sock.send(view) :]
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(self.sock)
        if late.cancelled_caught:
            raise OSError(errno.ETIMEDOUT, f"the peer took no data for {SEND_SECONDS:g} s")

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
