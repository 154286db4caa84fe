"""Fleet membership: each instance's record in Redis, refreshed by its heartbeat.

An instance is a hash (id, address, state, live calls, start and last heartbeat) that
expires a few heartbeats after the instance stops beating, listed in a sorted set by
start time; instances whose hash expired are dropped from the list when it is read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from gateway.fleet import keys
from gateway.fleet.link import Client, RedisLink, decode_fields

_FIELDS = ("instance", "address", "state", "live_calls", "started_at", "heartbeat_at")


@dataclass(frozen=True, slots=True)
class Member:
    instance: str
    address: str  # where its control plane listens
    state: str  # serving | draining
    live_calls: int
    started_at: float
    heartbeat_at: float

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _FIELDS}


class Membership:
    def __init__(self, link: RedisLink, instance: str, address: str, ttl_seconds: float) -> None:
        self._link = link
        self._instance = instance
        self._address = address
        self._ttl_ms = max(1, int(ttl_seconds * 1000))
        self._started_at = time.time()

    async def beat(self, state: str, live_calls: int) -> None:
        member = Member(self._instance, self._address, state, live_calls, self._started_at, time.time())
        await self._link.do(lambda client: self._write(client, member), "announcing this instance")

    async def leave(self) -> None:
        await self._link.do(self._remove, "leaving the fleet")

    async def list(self) -> list[Member]:
        return await self._link.do(_read_all, "listing instances")

    async def _write(self, client: Client, member: Member) -> None:
        key = keys.member(member.instance)
        async with client.pipeline(transaction=True) as pipe:
            pipe.hset(key, {name: str(getattr(member, name)) for name in _FIELDS})
            pipe.pexpire(key, self._ttl_ms)
            pipe.zadd(keys.MEMBERS, {member.instance: member.started_at})

    async def _remove(self, client: Client) -> None:
        async with client.pipeline(transaction=True) as pipe:
            pipe.delete([keys.member(self._instance)])
            pipe.zrem(keys.MEMBERS, [self._instance])


async def _read_all(client: Client) -> list[Member]:
    ids = [str(instance) for instance in await client.zrange(keys.MEMBERS, 0, -1)]
    if not ids:
        return []
    async with client.pipeline(transaction=False) as pipe:
        answers = [pipe.hgetall(keys.member(instance)) for instance in ids]
    members, gone = [], []
    for instance, answer in zip(ids, answers, strict=True):
        member = _decode(decode_fields(await answer))
        if member is None:
            gone.append(instance)
        else:
            members.append(member)
    if gone:
        await client.zrem(keys.MEMBERS, gone)
    return members


def _decode(fields: dict[str, str]) -> Member | None:
    try:
        return Member(
            fields["instance"], fields["address"], fields["state"], int(fields["live_calls"]),
            float(fields["started_at"]), float(fields["heartbeat_at"]),
        )  # fmt: skip
    except (KeyError, ValueError):
        return None
