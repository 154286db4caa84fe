"""Fleet-wide admission of media streams: a stream token works once in the whole fleet, and
a call has one live stream (Twilio has been seen opening a second socket for a call).

A redeemed token's nonce is kept in Redis until the token would have expired; a call's
stream lock names its instance and StreamSid, lives a few heartbeats and is refreshed by
its owner, so the lock of a dead instance lapses by itself. When Redis cannot be reached a
stream is admitted on the local checks alone (its token is still one-time in this process
and signed for this call), and the line `fleet.stream_unguarded` says so.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import structlog
from coredis import PureToken

from gateway.fleet import keys
from gateway.fleet.link import Client, FleetUnavailable, RedisLink

log = structlog.get_logger("gateway.fleet")

_TAKE = """
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[1] then return held end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class FleetStreamGuard:
    def __init__(self, link: RedisLink, instance: str, lock_ttl_seconds: float) -> None:
        self._link = link
        self._instance = instance
        self._ttl_ms = str(max(1, int(lock_ttl_seconds * 1000)))
        self._take = link.client.register_script(_TAKE)
        self._release = link.client.register_script(_RELEASE)
        self.unguarded = 0

    async def admit(self, call_sid: str, stream_sid: str, nonce: str, expires_at: float) -> str | None:
        try:
            if not await self._claim_token(nonce, expires_at):
                return "stream token already redeemed by another instance"
            holder = await self._lock(call_sid, stream_sid)
        except FleetUnavailable as exc:
            self.unguarded += 1
            log.warning("fleet.stream_unguarded", call_sid=call_sid, detail=str(exc))
            return None
        if holder is not None:
            return f"call already has a live stream on instance {holder.split(' ', 1)[0]}"
        return None

    async def release(self, call_sid: str, stream_sid: str) -> None:
        mine = self._holder(stream_sid)
        await self._link.do(
            lambda _client: self._release([keys.stream(call_sid)], [mine]), "releasing a stream lock"
        )

    async def refresh(self, streams: Iterable[tuple[str, str]]) -> None:
        """Keep the locks of this instance's live streams (call, stream) from lapsing; a lock
        that lapsed while Redis was away is taken again, unless another instance holds it."""
        held = list(streams)
        if held:
            await self._link.do(lambda client: self._refresh_all(client, held), "refreshing stream locks")

    async def _claim_token(self, nonce: str, expires_at: float) -> bool:
        ttl_ms = max(1, int((expires_at - time.time()) * 1000))
        claimed = await self._link.do(
            lambda client: client.set(keys.token(nonce), self._instance, px=ttl_ms, condition=PureToken.NX),
            "claiming a stream token",
        )
        return bool(claimed)

    async def _lock(self, call_sid: str, stream_sid: str) -> str | None:
        held: object = await self._link.do(
            lambda _client: self._take([keys.stream(call_sid)], [self._holder(stream_sid), self._ttl_ms]),
            "locking the call's stream",
        )
        return str(held) if held else None

    async def _refresh_all(self, client: Client, held: list[tuple[str, str]]) -> None:
        for call_sid, stream_sid in held:  # never over another instance's lock (a moved call)
            await self._take([keys.stream(call_sid)], [self._holder(stream_sid), self._ttl_ms])

    def _holder(self, stream_sid: str) -> str:
        return f"{self._instance} {stream_sid}"
