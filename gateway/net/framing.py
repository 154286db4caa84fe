"""WebSocket frame boundaries, sans-I/O: whole frames out of a byte stream, text frames in.

The one framing layer of the lean WebSocket. Every byte after the handshake passes
through a `FrameSplitter`, which finds where each frame ends however TCP split the
stream. A whole, unfragmented text frame (every frame of both media protocols) comes
out as its unmasked payload, ready to decode; any other frame (control frames,
fragments, binary) comes out as the frame's raw bytes, for the `websockets` protocol
object to parse and answer, so that object always sees whole frames and its state is
always that of a frame boundary. A frame larger than allowed, or masked the wrong way
for its direction, is refused before its payload is read.

Sending, `text_frame` builds a frame in one allocation; a client masks it with a key
from `MaskPool` and the C unmasking of `websockets.speedups`.
"""

from __future__ import annotations

import os

try:
    from websockets.speedups import apply_mask
except ImportError:  # a platform without the wheel's C extension
    from websockets.utils import apply_mask

from actors.errors import CloseCode, RemoteProtocolError

TEXT_FRAME = 0x81  # FIN + opcode 1, no extension bits


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


def text_frame(payload: bytes, masked: bool) -> bytes:
    """One whole text frame carrying `payload` (masked: as a client sends it)."""
    n = len(payload)
    length = bytes((n,)) if n < 126 else b"\x7e" + n.to_bytes(2) if n < 65536 else b"\x7f" + n.to_bytes(8)
    if not masked:
        return b"\x81" + length + payload
    key = MASKS.key()
    return b"\x81" + bytes((length[0] | 0x80,)) + length[1:] + key + apply_mask(payload, key)


class FrameSplitter:
    """Whole frames out of a byte stream.

    `feed(data)` returns, in order, `(True, payload)` for each whole unfragmented text
    frame (payload unmasked) and `(False, frame)` for each other frame (its raw bytes).
    Frames from a client must be masked and frames from a server must not (`masked`);
    either mistake, or a frame over `max_size`, raises `RemoteProtocolError` (1002,
    1009) as soon as the frame's header is in.
    """

    def __init__(self, *, masked: bool, max_size: int) -> None:
        self._masked = masked
        self._max_size = max_size
        self._partial: list[bytes] = []  # bytes of a frame not yet complete
        self._partial_size = 0
        self._needed = 0  # bytes that frame needs before it is worth parsing again

    def feed(self, data: bytes) -> list[tuple[bool, bytes]]:
        if self._partial:
            self._partial.append(data)
            self._partial_size += len(data)
            if self._partial_size < self._needed:
                return []  # a large frame arriving in pieces: join them once, not per piece
            data = b"".join(self._partial)
        frames: list[tuple[bool, bytes]] = []
        start, end = 0, len(data)
        self._needed = 0
        while start < end:
            header = frame_header(data, start, end)
            if header is None:
                break  # incomplete header
            size, offset, key = header
            self._check(size, key)
            if offset + size > end:
                self._needed = offset + size - start
                break  # incomplete payload
            if data[start] == TEXT_FRAME:
                payload = data[offset : offset + size]
                frames.append((True, apply_mask(payload, key) if key is not None else payload))
            else:
                frames.append((False, data[start : offset + size]))
            start = offset + size
        rest = data[start:]
        self._partial, self._partial_size = ([rest], len(rest)) if rest else ([], 0)
        return frames

    def _check(self, size: int, key: bytes | None) -> None:
        if size > self._max_size:
            raise RemoteProtocolError(
                f"frame of {size} bytes, over the {self._max_size} allowed", CloseCode.MESSAGE_TOO_BIG
            )
        if (key is not None) is not self._masked:
            side = "unmasked frame from a client" if self._masked else "masked frame from a server"
            raise RemoteProtocolError(side, CloseCode.PROTOCOL_ERROR)


def frame_header(buffer: bytes, start: int, end: int) -> tuple[int, int, bytes | None] | None:
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
