"""The fleet's call registry in Redis: every instance reads and writes the same records.

A record is a hash (`gateway.fleet.records`) listed in a sorted set by creation time.
Records of ended calls live `retention_seconds`; every other record lives a few heartbeats
and is kept alive by the instance that owns it (`refresh`, from the heartbeat), so the
calls of an instance that died leave the list on their own. The owner also ends its own
records that waited too long for what comes next, as the in-memory registry does
(`no_stream`, `no_status`). An update is one Lua script: fields merge, so a status
callback answered by one instance and a stream carried by another never undo each other.
Every failure to reach Redis raises `FleetUnavailable`.
"""

from __future__ import annotations

import builtins
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import orjson

from gateway.calls.registry import CallRecord, CallState
from gateway.fleet import keys
from gateway.fleet.link import Client, RedisLink, decode_fields
from gateway.fleet.records import decode, encode

# ARGV: ended TTL ms, active TTL ms, then three groups, each a count and its items:
# fields to set (name, value), fields to set unless set (name, value), fields to delete.
_UPDATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local i = 3
for _, command in ipairs({'HSET', 'HSETNX'}) do
  local n = tonumber(ARGV[i]); i = i + 1
  for _ = 1, n do redis.call(command, KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2 end
end
local n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do redis.call('HDEL', KEYS[1], ARGV[i]); i = i + 1 end
local ttl = ARGV[2]
if redis.call('HGET', KEYS[1], 'state') == '"ended"' then ttl = ARGV[1] end
redis.call('PEXPIRE', KEYS[1], ttl)
return redis.call('HGETALL', KEYS[1])
"""
_ONCE = ("ended_at", "live_at")  # set by the first change into ended or live, never again
PRUNE_BATCH = 100


@dataclasses.dataclass(slots=True)
class _Owned:
    record: CallRecord
    since: float  # when it entered its state


class RedisRegistry:
    def __init__(
        self,
        link: RedisLink,
        instance: str,
        *,
        retention_seconds: float,
        active_ttl_seconds: float,
        connecting_limit_s: float = 120.0,
        ringing_limit_s: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._link = link
        self._instance = instance
        self._ttls = (str(int(retention_seconds * 1000)), str(max(1, int(active_ttl_seconds * 1000))))
        self._limits = {
            CallState.CONNECTING: connecting_limit_s,
            CallState.RINGING: ringing_limit_s,
            CallState.ENDING: ringing_limit_s,
        }
        self._clock = clock
        self._owned: dict[str, _Owned] = {}  # records of this instance that are not ended
        self._update = link.client.register_script(_UPDATE)

    async def put(self, record: CallRecord) -> None:
        await self._link.do(lambda client: self._write(client, record), "writing a call record")
        self._own(record)

    async def get(self, call_sid: str) -> CallRecord | None:
        raw = await self._link.do(lambda client: client.hgetall(keys.call(call_sid)), "reading a call record")
        return decode(decode_fields(raw))

    async def update(self, call_sid: str, **changes: Any) -> CallRecord | None:
        now = self._clock()
        once = {name: now for name in _ONCE if _first_time(name, changes)}  # unless already set
        present, absent = encode(changes)
        present_once, _ = encode(once)
        args = [*self._ttls, *_group(present), *_group(present_once), str(len(absent)), *absent]
        raw: Any = await self._link.do(
            lambda _client: self._update([keys.call(call_sid)], args), "updating a call record"
        )
        record = decode(_pairs(raw)) if raw else None
        if record is not None:
            self._own(record)
        return record

    async def list(self, *, state: str | None = None, direction: str | None = None) -> list[CallRecord]:
        sids: builtins.list[str]
        records: builtins.list[CallRecord | None]
        sids, records = await self._link.do(self._read_all, "listing calls")
        gone = [sid for sid, record in zip(sids, records, strict=True) if record is None]
        if gone:
            await self._link.do(lambda client: client.zrem(keys.CALLS, gone), "forgetting expired calls")
        return [
            record
            for record in records
            if record is not None
            and (state is None or record.state == state)
            and (direction is None or record.direction == direction)
        ]

    async def refresh(self) -> None:
        """Keep this instance's records alive (rewriting any that expired while Redis was
        away), end those that waited too long, and forget listed calls that are gone."""
        records = [owned.record for owned in self._owned.values()]
        await self._link.do(lambda client: self._keep_alive(client, records), "refreshing call records")
        now = self._clock()
        for owned in list(self._owned.values()):
            limit = self._limits.get(owned.record.state)
            if limit is not None and now - owned.since >= limit:
                reason = "no_stream" if owned.record.state is CallState.CONNECTING else "no_status"
                await self.update(owned.record.call_sid, state=CallState.ENDED, end_reason=reason)
        await self._link.do(self._prune, "pruning the call list")

    # ---- Redis ------------------------------------------------------------------------

    async def _write(self, client: Client, record: CallRecord) -> None:
        present, _ = encode(dataclasses.asdict(record))
        key = keys.call(record.call_sid)
        ttl = self._ttls[0] if record.state is CallState.ENDED else self._ttls[1]
        async with client.pipeline(transaction=True) as pipe:
            pipe.delete([key])
            pipe.hset(key, present)
            pipe.pexpire(key, int(ttl))
            pipe.zadd(keys.CALLS, {record.call_sid: record.created_at})

    async def _keep_alive(self, client: Client, records: builtins.list[CallRecord]) -> None:
        """Extend what is still ours; forget what another instance took over or ended."""
        if not records:
            return
        async with client.pipeline(transaction=False) as pipe:
            heads = [pipe.hmget(keys.call(record.call_sid), ["instance", "state"]) for record in records]
        ours = []
        for record, head in zip(records, heads, strict=True):
            instance, state = await head
            if instance is None:
                await self._write(client, record)  # lost (Redis restarted): ours as far as we know
            elif instance != _json(self._instance) or state == _json(CallState.ENDED.value):
                self._owned.pop(record.call_sid, None)
            else:
                ours.append(record.call_sid)
        async with client.pipeline(transaction=False) as pipe:
            for sid in ours:
                pipe.pexpire(keys.call(sid), int(self._ttls[1]))

    async def _read_all(self, client: Client) -> tuple[builtins.list[str], builtins.list[CallRecord | None]]:
        sids = [str(sid) for sid in await client.zrange(keys.CALLS, 0, -1)]
        if not sids:
            return [], []
        async with client.pipeline(transaction=False) as pipe:
            answers = [pipe.hgetall(keys.call(sid)) for sid in sids]
        return sids, [decode(decode_fields(await answer)) for answer in answers]

    async def _prune(self, client: Client) -> None:
        oldest = [str(sid) for sid in await client.zrange(keys.CALLS, 0, PRUNE_BATCH - 1)]
        if not oldest:
            return
        async with client.pipeline(transaction=False) as pipe:
            exists = [pipe.exists([keys.call(sid)]) for sid in oldest]
        gone = [sid for sid, there in zip(oldest, exists, strict=True) if not await there]
        if gone:
            await client.zrem(keys.CALLS, gone)

    def _own(self, record: CallRecord) -> None:
        sid = record.call_sid
        if record.instance != self._instance or record.state is CallState.ENDED:
            self._owned.pop(sid, None)
            return
        previous = self._owned.get(sid)
        since = previous.since if previous and previous.record.state is record.state else self._clock()
        self._owned[sid] = _Owned(record, since)


def _json(text: str) -> str:
    return orjson.dumps(text).decode()


def _first_time(name: str, changes: dict[str, Any]) -> bool:
    entering = CallState.ENDED if name == "ended_at" else CallState.LIVE
    return changes.get("state") is entering and name not in changes


def _group(fields: dict[str, str]) -> list[str]:
    return [str(len(fields)), *(item for pair in fields.items() for item in pair)]


def _pairs(raw: Any) -> dict[str, str]:
    """A Lua script's HGETALL: a flat list of names and values."""
    if isinstance(raw, dict):
        return decode_fields(raw)
    items = [str(item) for item in raw]
    return dict(zip(items[::2], items[1::2], strict=True))
