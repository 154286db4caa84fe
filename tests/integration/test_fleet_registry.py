"""The fleet's call registry and stream guard against a real redis-server: records merge
field by field, expire unless their owner refreshes them, come back after Redis loses them,
and a stream token or a call's stream is claimed once."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
import trio

from gateway.calls.registry import CallRecord, CallState
from gateway.fleet.link import FleetUnavailable, RedisLink
from gateway.fleet.registry import RedisRegistry
from gateway.fleet.streams import FleetStreamGuard
from tests.redis_server import RedisServer, redis_server

SID = "CA" + "1" * 32


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@asynccontextmanager
async def linked(redis: RedisServer) -> AsyncIterator[RedisLink]:
    link = RedisLink(redis.url)
    async with link.open():
        yield link


def record(state: CallState = CallState.CONNECTING, instance: str = "a") -> CallRecord:
    return CallRecord(SID, "inbound", state, "+15550001111", "+15550002222", instance, 1000.0)


def registry(link: RedisLink, instance: str = "a", clock=None, **options) -> RedisRegistry:
    options = {"retention_seconds": 60, "active_ttl_seconds": 60, **options}
    return RedisRegistry(link, instance, **options, **({"clock": clock} if clock else {}))


class TestRecords:
    async def test_a_record_round_trips_and_updates_merge_field_by_field(self, redis):
        """Two instances change different fields of one record; neither undoes the other."""
        async with linked(redis) as link:
            a, b = registry(link, "a"), registry(link, "b")
            await a.put(record())
            await b.update(SID, twilio_status="in-progress")
            live = await a.update(SID, state=CallState.LIVE, stream_sid="MZ1")
            read = await b.get(SID)
        assert live == read
        assert read is not None
        assert (read.state, read.twilio_status, read.stream_sid) == (CallState.LIVE, "in-progress", "MZ1")
        assert read.live_at is not None
        assert read.answered_at is None

    async def test_the_first_end_time_stays(self, redis):
        """ended_at is set by the first change into ended; a later one keeps it."""
        async with linked(redis) as link:
            reg = registry(link)
            await reg.put(record(CallState.LIVE))
            first = await reg.update(SID, state=CallState.ENDED, end_reason="twilio_stop")
            await trio.sleep(0.01)
            again = await reg.update(SID, state=CallState.ENDED, end_reason="cancelled")
        assert first is not None
        assert again is not None
        assert again.ended_at == first.ended_at
        assert again.end_reason == "cancelled"

    async def test_updating_an_unknown_call_returns_none_and_creates_nothing(self, redis):
        async with linked(redis) as link:
            reg = registry(link)
            assert await reg.update(SID, state=CallState.LIVE) is None
            assert await reg.list() == []

    async def test_the_list_filters_and_forgets_expired_records(self, redis):
        """A record whose owner stopped refreshing it expires and leaves the list."""
        async with linked(redis) as link:
            reg = registry(link, active_ttl_seconds=0.2)
            await reg.put(record(CallState.LIVE))
            listed = await reg.list(state="live")
            none_ended = await reg.list(state="ended")
            await trio.sleep(0.4)
            later = await reg.list()
        assert [r.call_sid for r in listed] == [SID]
        assert none_ended == []
        assert later == []

    async def test_the_owner_keeps_its_records_alive_and_rewrites_lost_ones(self, redis):
        """refresh() extends the owner's records, and writes back one Redis lost (a restart)."""
        async with linked(redis) as link:
            reg = registry(link, active_ttl_seconds=0.3)
            await reg.put(record(CallState.LIVE))
            for _ in range(4):
                await trio.sleep(0.15)
                await reg.refresh()
            alive = await reg.get(SID)
            await link.client.flushall()
            await reg.refresh()
            back = await reg.get(SID)
        assert alive is not None
        assert back is not None
        assert back.state is CallState.LIVE

    async def test_the_owner_ends_a_call_whose_stream_never_came(self, redis):
        """A connecting record past the limit is ended as no_stream by its owner's refresh."""
        now = [1000.0]
        async with linked(redis) as link:
            reg = registry(link, clock=lambda: now[0], connecting_limit_s=120)
            await reg.put(record(CallState.CONNECTING))
            now[0] += 121
            await reg.refresh()
            ended = await reg.get(SID)
        assert ended is not None
        assert (ended.state, ended.end_reason) == (CallState.ENDED, "no_stream")

    async def test_a_record_owned_elsewhere_is_not_refreshed_here(self, redis):
        """Once the stream went live on b, a no longer keeps the record alive or ends it."""
        async with linked(redis) as link:
            a, b = registry(link, "a", active_ttl_seconds=0.3), registry(link, "b")
            await a.put(record(CallState.CONNECTING))
            await b.update(SID, state=CallState.LIVE, instance="b")
            await a.refresh()
        assert not a._owned
        assert SID in b._owned


class TestOutage:
    async def test_every_operation_fails_as_fleet_unavailable_when_redis_is_down(self, redis):
        """No coredis error escapes: reads, writes and lists raise FleetUnavailable, and the
        same link works again once Redis is back."""
        async with linked(redis) as link:
            reg = registry(link)
            redis.stop()
            for operation in (reg.get(SID), reg.put(record()), reg.list(), reg.update(SID, state="live")):
                with pytest.raises(FleetUnavailable, match="Redis is unreachable"):
                    await operation
            down = link.up
            redis.start()
            await reg.put(record())
            assert (await reg.get(SID)) is not None
        assert down is False
        assert link.up is True


class TestStreamGuard:
    async def test_a_token_is_claimed_once_and_a_call_has_one_stream(self, redis):
        async with linked(redis) as link:
            a, b = FleetStreamGuard(link, "a", 5), FleetStreamGuard(link, "b", 5)
            first = await a.admit(SID, "MZ1", "nonce1", time.time() + 100)
            replay = await b.admit(SID, "MZ2", "nonce1", 10**10)
            second = await b.admit(SID, "MZ2", "nonce2", 10**10)
            await a.release(SID, "MZ1")
            after_release = await b.admit(SID, "MZ2", "nonce3", 10**10)
        assert first is None
        assert replay == "stream token already redeemed by another instance"
        assert second == "call already has a live stream on instance a"
        assert after_release is None

    async def test_without_redis_a_stream_is_admitted_on_local_checks_and_counted(self, redis):
        async with linked(redis) as link:
            guard = FleetStreamGuard(link, "a", 5)
            redis.stop()
            refusal = await guard.admit(SID, "MZ1", "nonce", 10**10)
        assert refusal is None
        assert guard.unguarded == 1
