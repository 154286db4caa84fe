"""In-memory message sockets for tests on the virtual clock (no real I/O in flight)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from actors.message_socket import ConnectFailed, MessageSocket, SocketClosed


class MemorySocket:
    """One end of an in-memory socket pair; closing either end closes both directions."""

    def __init__(self, outbox: trio.MemorySendChannel[str], inbox: trio.MemoryReceiveChannel[str]) -> None:
        self._outbox = outbox
        self._inbox = inbox
        self.peer: MemorySocket | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self.sent: list[str] = []

    async def receive(self) -> str:
        try:
            return await self._inbox.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise SocketClosed(self._closed_code(), "closed") from None

    async def send(self, message: str) -> None:
        try:
            await self._outbox.send(message)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise SocketClosed(self._closed_code(), "closed") from None
        self.sent.append(message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
        await self._outbox.aclose()
        await self._inbox.aclose()

    def _closed_code(self) -> int | None:
        if self.close_code is not None:
            return self.close_code
        return self.peer.close_code if self.peer else None


def socket_pair(buffer: int = 256) -> tuple[MemorySocket, MemorySocket]:
    a_tx, b_rx = trio.open_memory_channel[str](buffer)
    b_tx, a_rx = trio.open_memory_channel[str](buffer)
    a, b = MemorySocket(a_tx, a_rx), MemorySocket(b_tx, b_rx)
    a.peer, b.peer = b, a
    return a, b


class MemoryConnector:
    """A `SocketConnector` whose every connection is handed to the test as the server end."""

    def __init__(self) -> None:
        self.server_ends_tx, self.server_ends = trio.open_memory_channel[MemorySocket](8)
        self.refuse: str | None = None
        self.refuse_status: int | None = None

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[MessageSocket]:
        if self.refuse is not None:
            raise ConnectFailed(self.refuse, self.refuse_status)
        client, server = socket_pair()
        await self.server_ends_tx.send(server)
        try:
            yield client
        finally:
            await client.close()
