"""Two gateway instances sharing one real redis-server: calls, commands and events cross
instances, a stream token works once in the fleet, and Redis going away costs live calls
nothing (fleet features answer 503 until it is back)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
import trio

from gateway.calls.registry import CallRecord, CallState
from gateway.fleet.link import RedisLink
from gateway.fleet.registry import RedisRegistry
from gateway.process.serving import Gateway
from gateway.simulator.audio import caller_phrase
from gateway.simulator.caller import CallScript, parse_connect_stream
from tests.integration.harness import (
    close_code,
    media_stream,
    new_call_sid,
    post_voice,
    running,
    start_message,
    voice_form,
)
from tests.integration.test_admin import (
    ACCOUNT,
    admin,
    admin_ws,
    answer_outbound,
    ask,
    next_event,
    wait_for_state,
)
from tests.integration.test_operations import scrape, scrape_until, value
from tests.redis_server import RedisServer, redis_server
from tests.twilio_rest_fake import FakeTwilioRest, fake_twilio_rest

TOKEN_KEY = "k" * 40


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@asynccontextmanager
async def fleet(redis: RedisServer, *names: str) -> AsyncIterator[tuple[FakeTwilioRest, list[Gateway]]]:
    """Instances `names` on one Redis, with Twilio REST pointed at one local recorder."""
    async with fake_twilio_rest() as twilio, AsyncExitStack() as stack:
        gateways = []
        for name in names:
            env = {
                "GATEWAY_REDIS_URL": redis.url,
                "GATEWAY_INSTANCE_ID": name,
                "GATEWAY_STREAM_TOKEN_KEY": TOKEN_KEY,
                "TWILIO_ACCOUNT_SID": ACCOUNT,
                "TWILIO_API_BASE_URL": twilio.url,
            }
            gateways.append(await stack.enter_async_context(running(env, fleet_heartbeat_s=0.2)))
        for gateway in gateways:
            await until_listening(gateway)
        yield twilio, gateways


async def until_listening(gateway: Gateway) -> None:
    assert gateway.fleet is not None
    with trio.fail_after(5):
        await gateway.fleet.messenger.subscribed.wait()


async def fleet_token(settings, call_sid: str) -> str:
    """The one-time stream token the voice webhook of this instance answers with."""
    response = await post_voice(settings, voice_form(call_sid, ACCOUNT))
    assert response.status_code == 200, response.text
    return parse_connect_stream(response.text)[1]["token"]


def long_call() -> CallScript:
    return CallScript(utterance=caller_phrase(), quiet_after_answer_ms=30_000, max_seconds=40)


class TestCallsAcrossInstances:
    async def test_a_call_on_one_instance_is_listed_and_hung_up_through_another(self, redis):
        """B lists A's live call with A as its instance; B's hang-up runs on A (Twilio REST
        and the stream ends as operator_hangup) and B answers with A's result."""
        async with fleet(redis, "a", "b") as (twilio, (a, b)):
            sid = new_call_sid()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(answer_outbound, a.settings, sid, long_call())
                await wait_for_state(b.settings, sid, "live")
                listed = (await admin(b.settings, "GET", "/admin/calls")).json()["calls"]
                response = await admin(b.settings, "POST", f"/admin/calls/{sid}/hangup")
            ended = await wait_for_state(b.settings, sid, "ended")
        assert [(call["call_sid"], call["instance"]) for call in listed] == [(sid, "a")]
        assert response.status_code == 200, response.text
        assert [r.form for r in twilio.requests] == [{"Status": ["completed"]}]
        assert (ended["end_reason"], ended["instance"]) == ("operator_hangup", "a")

    async def test_say_through_another_instance_reaches_the_call(self, redis):
        """`say` sent to B for A's call is queued on A's call (202 from B)."""
        async with fleet(redis, "a", "b") as (_twilio, (a, b)):
            sid = new_call_sid()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(answer_outbound, a.settings, sid, long_call())
                await wait_for_state(b.settings, sid, "live")
                response = await admin(b.settings, "POST", f"/admin/calls/{sid}/say", {"text": "Hello"})
                await admin(b.settings, "POST", f"/admin/calls/{sid}/hangup")
        assert (response.status_code, response.json()) == (202, {"call_sid": sid, "queued": True})

    async def test_a_command_for_a_call_whose_instance_is_gone_is_503_with_the_reason(self, redis):
        """The record names an instance nobody runs: 503 saying it is not listening."""
        async with fleet(redis, "b") as (_twilio, (b,)):
            sid = new_call_sid()
            await put_record(redis, sid, instance="gone")
            response = await admin(b.settings, "POST", f"/admin/calls/{sid}/hangup")
        assert response.status_code == 503
        assert "instance gone is not listening" in response.json()["error"]["message"]

    async def test_instances_are_listed_and_one_drains_another(self, redis):
        """GET /admin/instances on A lists both; A drains B; B's membership says draining."""
        async with fleet(redis, "a", "b") as (_twilio, (a, b)):
            before = (await admin(a.settings, "GET", "/admin/instances")).json()["instances"]
            drained = await admin(a.settings, "POST", "/admin/drain", {"instance": "b"})
            assert b.fleet is not None
            await b.fleet.beat()
            after = (await admin(a.settings, "GET", "/admin/instances")).json()["instances"]
            assert b.drain.draining
            assert not a.drain.draining
        assert sorted((m["instance"], m["state"]) for m in before) == [("a", "serving"), ("b", "serving")]
        assert (drained.status_code, drained.json()["instance"]) == (202, "b")
        assert sorted((m["instance"], m["state"]) for m in after) == [("a", "serving"), ("b", "draining")]


class TestEventsAcrossInstances:
    async def test_a_subscriber_on_one_instance_sees_the_calls_of_another(self, redis):
        """An admin WebSocket on B subscribed to call.* gets A's call.started, marked with A."""
        async with fleet(redis, "a", "b") as (_twilio, (a, b)), admin_ws(b.settings) as ws:
            reply = await ask(ws, id="s", type="subscribe", topics=["call.started"])
            assert reply["type"] == "result"
            sid = new_call_sid()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(answer_outbound, a.settings, sid, long_call())
                event = await next_event(ws, "call.started", seconds=10)
                await admin(b.settings, "POST", f"/admin/calls/{sid}/hangup")
        assert (event["call_sid"], event["instance"]) == (sid, "a")


class TestStreamsAcrossInstances:
    async def test_a_stream_token_works_once_in_the_whole_fleet(self, redis):
        """A token redeemed on A is refused on B (1008), though B never saw it redeemed."""
        async with fleet(redis, "a", "b") as (_twilio, (a, b)):
            sid = new_call_sid()
            token = await fleet_token(a.settings, sid)
            async with media_stream(a.settings) as first:
                await first.send_message(start_message(sid, token))
                await wait_for_state(a.settings, sid, "live")
                async with media_stream(b.settings) as second:
                    await second.send_message(start_message(sid, token, stream_sid="MZ" + "b" * 32))
                    code = await close_code(second)
                    reason = second.closed.reason if second.closed else ""
        assert code == 1008
        assert "stream token already redeemed by another instance" in str(reason)

    async def test_a_second_live_stream_for_a_call_is_refused_on_another_instance(self, redis):
        """Two webhooks for one call (two valid tokens): the stream on B is refused while A
        carries the call, naming A."""
        async with fleet(redis, "a", "b") as (_twilio, (a, b)):
            sid = new_call_sid()
            first_token = await fleet_token(a.settings, sid)
            second_token = await fleet_token(b.settings, sid)
            async with media_stream(a.settings) as first:
                await first.send_message(start_message(sid, first_token))
                await wait_for_state(a.settings, sid, "live")
                async with media_stream(b.settings) as second:
                    await second.send_message(start_message(sid, second_token, stream_sid="MZ" + "c" * 32))
                    code = await close_code(second)
                    reason = second.closed.reason if second.closed else ""
        assert code == 1008
        assert "live stream on instance a" in str(reason)


class TestRedisOutage:
    async def test_live_calls_go_on_fleet_features_answer_503_and_all_recovers(self, redis):
        """Redis stops mid-call: the call goes on and ends cleanly, the call list is 503 with
        the reason; Redis comes back: the list answers again and a new call is recorded."""
        async with fleet(redis, "a") as (_twilio, (a,)):
            sid = new_call_sid()
            reports = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(run_call, a, sid, reports)
                await wait_for_state(a.settings, sid, "live")
                redis.stop()
                outage = await admin(a.settings, "GET", "/admin/calls")
            during = await scrape_until(  # the call's end, written as it leaves, is lost
                a.settings, lambda samples: value(samples, "gateway_fleet_records_lost_total") >= 1, 5
            )
            redis.start()
            assert a.fleet is not None
            await a.fleet.beat()
            recovered = await admin(a.settings, "GET", "/admin/calls")
            after = new_call_sid()
            await answer_outbound(a.settings, after)
            last = await wait_for_state(a.settings, after, "ended")
            recovered_metrics = await scrape(a.settings)
        assert outage.status_code == 503
        assert "Redis is unreachable" in outage.json()["error"]["message"]
        assert reports[0].ended_cleanly
        assert recovered.status_code == 200
        assert last["instance"] == "a"
        assert value(during, "gateway_fleet_redis_up") == 0
        assert value(recovered_metrics, "gateway_fleet_redis_up") == 1


async def run_call(gateway: Gateway, sid: str, reports: list) -> None:
    reports.append(await answer_outbound(gateway.settings, sid))


async def put_record(redis: RedisServer, sid: str, instance: str) -> None:
    link = RedisLink(redis.url)
    async with link.open():
        registry = RedisRegistry(link, instance, retention_seconds=60, active_ttl_seconds=60)
        record = CallRecord(sid, "inbound", CallState.LIVE, "+15550001", "+15550002", instance, 0.0)
        await registry.put(record)
