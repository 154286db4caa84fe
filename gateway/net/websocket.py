"""An open WebSocket as a message socket, with as few trio steps per message as possible.

One framing layer, one state machine. `gateway.net.framing` finds every frame boundary
and unmasks simple text frames (every frame of both media protocols); the `websockets`
sans-I/O protocol object is the state machine, and is handed every other frame whole:
it answers pings, runs the closing handshake and validates control frames and
fragments. Neither ever reads the other's bytes.

- Sends frame at once and never yield when the kernel takes the bytes (`send_nowait`
  does not even await: the uplink's producer hands audio over in its own step); concurrent
  senders keep their order (whichever sender is writing flushes what the others
  queued), and a sender waits once more than `MAX_PENDING_BYTES` are queued behind a
  blocked write, so a stalled peer cannot grow our memory.
- Every failure of the connection is `SocketClosed`; a frame that breaks the protocol
  is a `RemoteProtocolError` with the close code to answer (1002 protocol, 1003 binary,
  1007 not UTF-8, 1009 too big), and `close` sends that code.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Sequence

import trio
from websockets.client import ClientProtocol
from websockets.exceptions import PayloadTooBig, WebSocketException
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from actors.errors import CloseCode, RemoteProtocolError
from actors.message_socket import SocketClosed
from gateway.net.framing import FrameSplitter, text_frame
from gateway.net.transport import CLOSE_TIMEOUT_SECONDS, Transport

MAX_PENDING_BYTES = 256 * 1024  # queued behind a blocked write before senders wait
DEFAULT_MAX_SIZE = 1 << 20


class LeanWebSocket:
    """An open WebSocket (either side), past its handshake.

    `initial` holds bytes that arrived with the handshake and belong to the frames.
    """

    def __init__(
        self, transport: Transport, protocol: ClientProtocol | ServerProtocol, initial: bytes = b""
    ) -> None:
        self._transport = transport
        self._protocol = protocol
        self._client = isinstance(protocol, ClientProtocol)
        max_size = protocol.max_message_size or DEFAULT_MAX_SIZE
        self._frames = FrameSplitter(masked=not self._client, max_size=max_size)
        self._initial = initial
        self._messages: deque[str] = deque()
        self._fragments: list[bytes] = []
        self._outgoing: list[bytes] = []
        self._outgoing_bytes = 0
        self._flushing = False
        self._flushed = trio.lowlevel.ParkingLot()
        self._reading = False
        self._closed: SocketClosed | None = None
        self.last_received = trio.current_time()  # any bytes at all: frames, pongs, a close

    @property
    def closed(self) -> bool:
        return self._closed is not None

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
        if self._protocol.state is not State.OPEN:
            raise SocketClosed(None, "closing")
        self._queue(text_frame(message.encode(), self._client))
        await self.flush()

    def send_nowait(self, message: str) -> bool:
        """One message at once, without waiting, when nothing stands in its way: True once
        the transport has it (written, or first in line for the next write); False, nothing
        sent, while another sender is writing, a write is still unfinished, the kernel has
        no room (plain TCP), or the socket is closed or closing. Then `send` it.

        What the kernel did not take of an accepted message leaves with the next send. On
        the uplink that is the next caller frame, at most 20 ms later (Twilio sends media
        every 20 ms, silence too), and it only happens when the kernel's send buffer is
        full, that is when the peer is already that far behind; `close` flushes it too."""
        if self._closed is not None or self._flushing or self._protocol.state is not State.OPEN:
            return False
        for data in self._protocol.data_to_send():
            if data:
                self._queue(data)
        if self._outgoing:
            return False  # pongs wait: the sender that flushes them sends this too
        try:
            return self._transport.send_nowait(text_frame(message.encode(), self._client))
        except OSError as exc:
            self._closed = SocketClosed(1006, f"connection lost: {exc!r}")
            return False

    async def send_batch(self, messages: Sequence[str]) -> None:
        """Several messages in one write (a media message and the mark after it)."""
        if self._closed is not None:
            raise self._closed
        if self._protocol.state is not State.OPEN:
            raise SocketClosed(None, "closing")
        for message in messages:
            self._queue(text_frame(message.encode(), self._client))
        await self.flush()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed is None:
            with trio.move_on_after(CLOSE_TIMEOUT_SECONDS, shield=True):
                with contextlib.suppress(WebSocketException, SocketClosed, RemoteProtocolError):
                    if self._protocol.state is State.OPEN:
                        self._protocol.send_close(code, reason.encode()[:123].decode("utf-8", "ignore"))
                    await self.flush()
                    while not self._reading and self._closed is None:  # the peer's close frame
                        await self._read()
            self._closed = self._closed or SocketClosed(code, "closed")
        await self._transport.aclose()

    async def ping(self) -> None:
        """Ask the peer for a pong (it lands in `last_received`); waits at most as long as a
        send does, and not at all while another sender is writing."""
        if self._closed is None and self._protocol.state is State.OPEN:
            self._protocol.send_ping(b"gateway")
            await self.flush()

    async def abort(self) -> None:
        """Close the connection without a closing handshake (a handshake that failed)."""
        self._closed = self._closed or SocketClosed(1006, "aborted")
        await self._transport.aclose()

    # ---- bytes out ----------------------------------------------------------------

    def _queue(self, data: bytes) -> None:
        self._outgoing.append(data)
        self._outgoing_bytes += len(data)

    async def flush(self) -> None:
        """Send what is queued (frames, pongs, the close handshake), in order."""
        for data in self._protocol.data_to_send():
            if data:  # b"" is the protocol's end-of-stream marker: close() closes the socket
                self._queue(data)
        while self._flushing and self._outgoing_bytes > MAX_PENDING_BYTES:
            await self._flushed.park()  # woken when the writer takes the queue, or stops
        if self._closed is not None:
            raise self._closed
        if self._flushing or not self._outgoing:
            return  # the sender already writing takes ours too, in order
        self._flushing = True
        try:
            while self._outgoing:
                data = b"".join(self._outgoing)
                self._outgoing.clear()
                self._outgoing_bytes = 0
                if self._flushed:
                    self._flushed.unpark_all()
                await self._transport.send(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self._closed = self._closed or SocketClosed(1006, f"connection lost: {exc!r}")
            raise self._closed from None
        finally:
            self._flushing = False
            if self._flushed:
                self._flushed.unpark_all()  # a parked sender takes over what is left

    # ---- bytes in -----------------------------------------------------------------

    async def _read(self) -> None:
        data, self._initial = self._initial, b""
        if not data:
            self._reading = True
            try:
                data = await self._transport.receive()
            finally:
                self._reading = False
            self.last_received = trio.current_time()
        if not data:
            self._protocol.receive_eof()
            self._closed = self._closed or self._peer_closed()
            return
        for is_text, payload in self._frames.feed(data):
            if is_text:
                self._text(payload)
            else:
                self._protocol.receive_data(payload)
                self._take_events()
        await self.flush()  # pongs, the close handshake
        if self._protocol.close_rcvd is not None or self._protocol.state is State.CLOSED:
            self._closed = self._closed or self._peer_closed()

    def _text(self, payload: bytes) -> None:
        if self._fragments:
            raise RemoteProtocolError("a text frame inside a fragmented message", CloseCode.PROTOCOL_ERROR)
        if self._protocol.state is State.OPEN:
            self._append_text(payload)
        # else: we sent a close frame; data after it is discarded (RFC 6455 section 1.4)

    def _take_events(self) -> None:
        for event in self._protocol.events_received():
            if isinstance(event, Frame):
                self._take(event)
        failure = self._protocol.parser_exc
        if failure is not None and not isinstance(failure, EOFError):
            raise _protocol_error(failure)

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

    def _append_text(self, payload: bytes) -> None:
        try:
            self._messages.append(payload.decode())
        except UnicodeDecodeError as exc:
            raise RemoteProtocolError(
                f"text frame is not UTF-8: {exc.reason}", CloseCode.INVALID_PAYLOAD
            ) from None

    def _peer_closed(self) -> SocketClosed:
        received = self._protocol.close_rcvd
        if received is None:
            return SocketClosed(1006, "connection dropped without a close frame")
        return SocketClosed(received.code, received.reason)


def _protocol_error(failure: Exception) -> RemoteProtocolError:
    """What the protocol object found wrong in a frame, with the close code it asks for."""
    if isinstance(failure, PayloadTooBig):
        return RemoteProtocolError("message too big", CloseCode.MESSAGE_TOO_BIG)
    if isinstance(failure, UnicodeDecodeError):
        return RemoteProtocolError(f"text is not UTF-8: {failure.reason}", CloseCode.INVALID_PAYLOAD)
    return RemoteProtocolError(f"WebSocket protocol error: {failure}", CloseCode.PROTOCOL_ERROR)
