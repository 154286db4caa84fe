"""The message-socket interface every WebSocket stack hides behind.

The media path sends about 50 JSON messages a second per call and direction, and the
per-message cost of WebSocket stacks differs by 4x, so actors never see a library's
socket: they see `receive() -> str`, `send(str)` and `close(code)`, and one exception,
`SocketClosed`, whatever went wrong underneath (peer closed, TCP reset, we closed it).
A binary or oversized frame is not a closed socket but a broken protocol: adapters
raise `RemoteProtocolError` for it, with the close code to answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable


class SocketClosed(Exception):
    """The socket can no longer carry messages.

    `code` is the close code the peer sent, if one was seen (1006 when the connection
    dropped without a close frame); `reason` is the peer's close reason or a description.
    """

    def __init__(self, code: int | None = None, reason: str = "") -> None:
        super().__init__(f"socket closed (code={code}, reason={reason!r})")
        self.code = code
        self.reason = reason


class MessageSocket(Protocol):
    """A WebSocket reduced to what the actors need: whole text messages in order."""

    async def receive(self) -> str:
        """Return the next text message; raise `SocketClosed` when no more will come."""
        ...

    async def send(self, message: str) -> None:
        """Send one text message; raise `SocketClosed` if the socket is closed."""
        ...

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with `code`; idempotent, never raises for an already closed socket."""
        ...


@runtime_checkable
class Batching(Protocol):
    """A message socket that can send several messages in one write."""

    async def send_batch(self, messages: Sequence[str]) -> None:
        """Send `messages` in order, in one write; raise `SocketClosed` as `send` does."""
        ...


@runtime_checkable
class SendsNowait(Protocol):
    """A message socket that can send a message in the caller's own step when nothing
    stands in the way (no other sender writing, room in the kernel)."""

    def send_nowait(self, message: str) -> bool:
        """True once the message is on its way; False, nothing sent, if it must be `send`."""
        ...


def batch_sender(socket: MessageSocket) -> Callable[[Sequence[str]], Awaitable[None]]:
    """How to send several messages in order on `socket`: in one write where it can, else
    one by one. Decided once per socket (a runtime protocol check costs microseconds)."""
    if isinstance(socket, Batching):
        return socket.send_batch

    async def one_by_one(messages: Sequence[str]) -> None:
        for message in messages:
            await socket.send(message)

    return one_by_one


@runtime_checkable
class Liveness(Protocol):
    """A message socket that can tell when its peer was last heard from, and ping it.

    `last_received` is in trio time; a pong counts. Sockets without it are not watched."""

    last_received: float

    async def ping(self) -> None: ...


class ConnectFailed(Exception):
    """A socket could not be opened: refused, rejected at the handshake, timed out.

    `status` is the HTTP status of a rejected handshake (401 for a bad key), if any.
    """

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class SocketConnector(Protocol):
    """Opens a fresh message socket to one peer (the AI provider) each time it is entered."""

    def connect(self) -> AbstractAsyncContextManager[MessageSocket]:
        """Connect; raise `ConnectFailed` if the socket cannot be opened."""
        ...
