"""What a media stream must pass beyond its own token: nothing for one process, the fleet's
checks in Redis for many (`gateway.fleet.streams`)."""

from __future__ import annotations

from typing import Protocol


class StreamGuard(Protocol):
    async def admit(self, call_sid: str, stream_sid: str, nonce: str, expires_at: float) -> str | None:
        """None to admit the stream, else why not: its token (`nonce`, valid until the Unix
        time `expires_at`) was redeemed elsewhere, or the call has a live stream elsewhere."""
        ...

    async def release(self, call_sid: str, stream_sid: str) -> None:
        """The stream is over."""
        ...
