"""One-time stream tokens: minted at the voice webhook, redeemed once at the media stream.

Twilio drops query strings from `<Stream url>`, so the token travels as a `<Parameter>`
and comes back in `start.customParameters`. A token is bound to the CallSid it was
minted for, expires after a short time, and is consumed by its first use.

Tokens carry their own proof: `v1.<expiry ms>.<nonce>.<mac>`, the MAC an HMAC-SHA256 over
those fields and the CallSid under a key the replicas of a fleet share
(`GATEWAY_STREAM_TOKEN_KEY`; a random key per process when unset). Twilio's webhook
and its media stream are two unrelated connections from different Twilio addresses, so
no load-balancer affinity can bring them to the same process; with a shared key, any
replica can admit the stream. Each process remembers the nonces it has redeemed until
they expire, however many there are, so a token works once per process (and the upgrade
must also carry Twilio's signature); a fleet also claims each nonce in Redis, so a token
works once in the fleet. A token presented with the wrong CallSid is burnt
when it was minted here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

_T = TypeVar("_T")
_VERSION = "v1"
_MAC_BYTES = 18


class Redemption(StrEnum):
    ACCEPTED = "accepted"
    UNKNOWN = "unknown"  # malformed, forged, already used, or minted under another key
    EXPIRED = "expired"
    WRONG_CALL = "wrong_call"


class StreamTokens:
    """Mint and redeem tokens; the books (minted here, redeemed here) are bounded and expire."""

    def __init__(
        self,
        ttl_seconds: float,
        key: bytes | None = None,
        capacity: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ttl = ttl_seconds
        self._key = key or secrets.token_bytes(32)
        self._capacity = capacity
        self._clock = clock
        self._minted: OrderedDict[str, tuple[str, float]] = OrderedDict()  # nonce -> (call, expiry)
        self._redeemed: OrderedDict[str, float] = OrderedDict()  # nonce -> expiry
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._minted)

    def mint(self, call_sid: str) -> str:
        now = self._clock()
        _forget_expired(self._minted, now, lambda entry: entry[1])
        while len(self._minted) >= self._capacity:
            self._minted.popitem(last=False)
            self.evicted += 1
        expires = str(int((now + self._ttl) * 1000))
        nonce = secrets.token_urlsafe(12)
        self._minted[nonce] = (call_sid, int(expires) / 1000)
        return f"{_VERSION}.{expires}.{nonce}.{self._mac(expires, nonce, call_sid)}"

    def outstanding(self) -> int:
        """Tokens minted here, not redeemed here and not expired (a token redeemed by another
        replica is counted until it expires)."""
        _forget_expired(self._minted, self._clock(), lambda entry: entry[1])
        return len(self._minted)

    def redeem(self, token: str, call_sid: str) -> Redemption:
        parts = token.split(".")
        if len(parts) != 4 or parts[0] != _VERSION or not parts[1].isdigit():
            return Redemption.UNKNOWN
        _, expires, nonce, mac = parts
        if nonce in self._redeemed:
            return Redemption.UNKNOWN
        minted = self._minted.pop(nonce, None)
        if not hmac.compare_digest(
            mac.encode("utf-8", "replace"), self._mac(expires, nonce, call_sid).encode()
        ):
            if minted is None:
                return Redemption.UNKNOWN
            self._remember(nonce, minted[1])  # ours, presented for another call: burnt
            return Redemption.WRONG_CALL
        expiry = int(expires) / 1000
        self._remember(nonce, expiry)
        if self._clock() >= expiry:
            return Redemption.EXPIRED
        return Redemption.ACCEPTED

    @staticmethod
    def nonce(token: str) -> tuple[str, float]:
        """The nonce of a well-formed token and its expiry (Unix time), to refuse its reuse on
        other replicas too (`gateway.fleet.streams`)."""
        _, expires, nonce, _ = token.split(".")
        return nonce, int(expires) / 1000

    def _remember(self, nonce: str, expiry: float) -> None:
        # Never forgotten before it expires, or a flood of calls would reopen the replay
        # window; the book stays bounded all the same, since only tokens with a valid MAC
        # (minted by a replica for a call Twilio signed) are ever remembered.
        _forget_expired(self._redeemed, self._clock(), lambda entry: entry)
        self._redeemed[nonce] = expiry

    def _mac(self, expires: str, nonce: str, call_sid: str) -> str:
        message = f"{_VERSION}.{expires}.{nonce}.{call_sid}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(digest).decode()


def _forget_expired(book: OrderedDict[str, _T], now: float, expiry: Callable[[_T], float]) -> None:
    # Constant TTL: insertion order is expiry order, so expired entries sit at the front.
    while book:
        first = next(iter(book.values()))
        if expiry(first) > now:
            break
        book.popitem(last=False)
