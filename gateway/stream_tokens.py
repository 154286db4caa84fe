"""One-time stream tokens: minted at the voice webhook, redeemed once at the media stream.

Twilio drops query strings from `<Stream url>`, so the token travels as a `<Parameter>`
and comes back in `start.customParameters`. A token is bound to the CallSid it was
minted for, expires after a short time, and is consumed by its first use, right or
wrong: a token presented with the wrong CallSid is burnt.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import trio


class Redemption(StrEnum):
    ACCEPTED = "accepted"
    UNKNOWN = "unknown"  # never minted, already used, or evicted
    EXPIRED = "expired"
    WRONG_CALL = "wrong_call"


@dataclass(frozen=True, slots=True)
class _Grant:
    call_sid: str
    expires_at: float


class StreamTokens:
    """Outstanding tokens, oldest first; bounded so a webhook flood cannot grow it without end."""

    def __init__(
        self,
        ttl_seconds: float,
        capacity: int = 10_000,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self._ttl = ttl_seconds
        self._capacity = capacity
        self._clock = clock
        self._grants: OrderedDict[str, _Grant] = OrderedDict()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._grants)

    def mint(self, call_sid: str) -> str:
        now = self._clock()
        self._forget_expired(now)
        while len(self._grants) >= self._capacity:
            self._grants.popitem(last=False)
            self.evicted += 1
        token = secrets.token_urlsafe(24)
        self._grants[token] = _Grant(call_sid, now + self._ttl)
        return token

    def outstanding(self) -> int:
        """Tokens minted, not yet redeemed and not expired."""
        self._forget_expired(self._clock())
        return len(self._grants)

    def redeem(self, token: str, call_sid: str) -> Redemption:
        grant = self._grants.pop(token, None)
        if grant is None:
            return Redemption.UNKNOWN
        if self._clock() >= grant.expires_at:
            return Redemption.EXPIRED
        if not secrets.compare_digest(grant.call_sid, call_sid):
            return Redemption.WRONG_CALL
        return Redemption.ACCEPTED

    def _forget_expired(self, now: float) -> None:
        # Constant TTL: insertion order is expiry order, so expired grants sit at the front.
        while self._grants:
            token, grant = next(iter(self._grants.items()))
            if grant.expires_at > now:
                break
            del self._grants[token]
