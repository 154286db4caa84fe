"""TLS on the raw socket: an `ssl.SSLObject` over memory BIOs, without trio's stream layer.

Real providers are `wss://`, so every message of the uplink (50 a second per call) is a
TLS record. trio's `SSLStream` spends more on each send and receive than the crypto does
(a conflict detector, a retry loop and a checkpoint per call into the socket), so this
transport encrypts into memory and moves the ciphertext with the same non-blocking socket
calls as `RawSocketTransport`: a send that fits in the kernel buffer never yields.

Ciphertext, once made, always leaves, in order: the TLS sequence numbers are spent when a
record is encrypted, so a send cancelled before the kernel took any of it keeps its
records for the next send (the message goes out late, never lost half way), and records
the TLS layer makes while reading (a TLS 1.3 key update answer) go out with the next send.
"""

from __future__ import annotations

import contextlib
import functools
import ssl
from typing import cast

import trio

from gateway.net.transport import RECEIVE_BYTES, RawSocketTransport, Transport

_PLAIN = memoryview(bytearray(RECEIVE_BYTES))  # shared, as transport._RECEIVED is: copied out at once


@functools.cache
def client_context() -> ssl.SSLContext:
    """One verifying client context per process: with Debian's trust store (144 CAs) each
    new context cost 17 ms of CPU and 830 KB, so no connection should pay for its own
    (SSL_CERT_FILE is read once)."""
    return ssl.create_default_context()


class TlsTransport:
    """A TLS connection over a byte transport (`RawSocketTransport` in the product), whose
    `send` either takes all of its bytes or, if cancelled, none; `handshake()` first."""

    def __init__(
        self, raw: Transport, context: ssl.SSLContext, *, server_hostname: str | None = None,
        server_side: bool = False,
    ) -> None:  # fmt: skip
        self._raw = raw
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(
            self._incoming, self._outgoing, server_side=server_side, server_hostname=server_hostname
        )
        self._unsent = b""

    @classmethod
    async def start(
        cls, stream: trio.SocketStream, context: ssl.SSLContext, *, server_hostname: str | None = None,
        server_side: bool = False,
    ) -> TlsTransport:  # fmt: skip
        """Take over the socket of a trio stream and run the handshake; a failed handshake
        closes the socket and raises `ssl.SSLError` (an OSError) or ConnectionResetError."""
        raw = RawSocketTransport.of(stream)
        tls = cls(raw, context, server_hostname=server_hostname, server_side=server_side)
        try:
            await tls.handshake()
        except BaseException:
            await tls.aclose()
            raise
        return tls

    async def handshake(self) -> None:
        """Run the TLS handshake; raise `ssl.SSLError` (an OSError) if it fails, or
        ConnectionResetError if the peer closes during it."""
        while True:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                await self._send_ciphertext()
                if not await self._take_ciphertext():
                    raise ConnectionResetError("the peer closed during the TLS handshake") from None
            else:
                await self._send_ciphertext()
                return

    async def receive(self) -> bytes:
        """Decrypted bytes; b"" once the peer closed (close_notify or not) or the socket broke."""
        while True:
            try:
                plain = self._decrypt()
            except ssl.SSLError:  # a ragged end, a bad record: the connection is over
                return b""
            if plain is None:
                return b""
            if plain:
                return plain
            if not await self._take_ciphertext():
                return b""

    async def send(self, data: bytes) -> None:
        """All of `data`, encrypted; raise OSError if the connection broke."""
        if data:
            self._encrypt(data)
        await self._send_ciphertext()

    def send_nowait(self, data: bytes) -> bool:
        """`data`, encrypted, to the kernel without waiting; False, nothing encrypted, while
        earlier records still wait. Once encrypted it is accepted (True) even if the kernel
        had no room: the records are numbered, so they go first with the next send."""
        if self._unsent:
            return False
        self._encrypt(data)
        records = self._outgoing.read()
        if not self._raw.send_nowait(records):
            self._unsent = records
        return True

    async def aclose(self) -> None:
        """Say close_notify if the kernel takes it at once (one attempt: never wait for a peer
        on the way out), then close the socket."""
        with contextlib.suppress(ssl.SSLError, ValueError):
            self._tls.unwrap()  # writes close_notify; the peer's answer is not awaited
        with contextlib.suppress(OSError):
            self._raw.send_nowait(self._unsent + self._outgoing.read())
        await self._raw.aclose()

    def _encrypt(self, data: bytes) -> None:
        try:
            self._tls.write(data)
        except ssl.SSLWantReadError:  # a renegotiation: providers never ask for one
            raise ConnectionAbortedError("the peer asked to renegotiate TLS") from None

    def _decrypt(self) -> bytes | None:
        """What the queued ciphertext holds in plain text: b"" if it holds no whole record yet,
        None if it ends with the peer's close_notify."""
        pieces: list[bytes] = []
        while True:
            try:
                size = cast(int, self._tls.read(RECEIVE_BYTES, _PLAIN))  # with a buffer: a count
            except ssl.SSLWantReadError:
                break
            except ssl.SSLError:  # a bad record after good ones: hand over the good ones first
                if pieces:
                    break
                raise
            if not size:
                return b"".join(pieces) if pieces else None
            pieces.append(_PLAIN[:size].tobytes())
            if not self._incoming.pending and not self._tls.pending():
                break
        return b"".join(pieces)

    async def _take_ciphertext(self) -> bool:
        """Read from the socket into the TLS layer; False once the socket is closed."""
        data = await self._raw.receive()
        if not data:
            return False
        self._incoming.write(data)
        return True

    async def _send_ciphertext(self) -> None:
        """Everything encrypted so far, in order, whole (`RawSocketTransport.send`)."""
        records = self._unsent + self._outgoing.read() if self._unsent else self._outgoing.read()
        self._unsent = records
        try:
            await self._raw.send(records)  # cancelled only before the kernel took anything
        except OSError:
            self._unsent = b""  # broken part way: nothing can follow these records
            raise
        self._unsent = b""
