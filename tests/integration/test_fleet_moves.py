"""Moving live calls: a drain of one instance hands each call, at a turn boundary, to
another through Twilio's `<Connect action>` (played by the simulator as Twilio plays it),
and the conversation goes on there without a second greeting. Real redis-server."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx2
import pytest
import trio

from gateway.calls.handoff import Handoff
from gateway.process.serving import Gateway
from gateway.settings import DEV_TWILIO_ACCOUNT_SID, DEV_TWILIO_AUTH_TOKEN
from gateway.simulator.audio import caller_phrase
from gateway.simulator.caller import CallReport, CallScript, simulate_call
from gateway.simulator.twiml_client import parse_twiml
from gateway.twilio.signature import compute_signature
from tests.integration.harness import new_call_sid, post_voice, running, voice_form
from tests.integration.test_admin import ACCOUNT, admin, wait_for_state
from tests.integration.test_fleet import fleet
from tests.redis_server import RedisServer, redis_server


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


def lingering_caller() -> CallScript:
    """Says the phrase, hears the answer, then stays on the line 4 s in silence."""
    return CallScript(utterance=caller_phrase(), quiet_after_answer_ms=4000, max_seconds=40)


async def call_through(gateway: Gateway, sid: str, action_base: str, reports: list[CallReport]) -> None:
    """A call answered on `gateway`; Twilio's action requests reach `action_base`."""
    report = await simulate_call(
        gateway.settings.public_url, DEV_TWILIO_AUTH_TOKEN, ACCOUNT, lingering_caller(), call_sid=sid,
        direction="outbound-api", action_base=action_base,
    )  # fmt: skip
    reports.append(report)


async def answered(gateway: Gateway, sid: str) -> None:
    """Until the call's conversation holds the greeting, the caller's turn and the answer."""
    with trio.fail_after(30):
        while True:
            call = gateway.calls.get(sid)
            if call is not None and [t.role for t in call.ai.conversation.replay()][-2:] == [
                "user",
                "assistant",
            ]:
                return
            await trio.sleep(0.05)


class TestMoves:
    async def test_a_drained_instances_call_moves_to_another_and_goes_on(
        self, redis, log_lines_follow_the_schema
    ):
        """A is drained mid-call: the call moves to B at its turn boundary (stream closed
        1000, Twilio follows the action to B), B's AI session starts from the earlier
        transcript without greeting again, the caller ends the call cleanly on B."""
        lines = log_lines_follow_the_schema
        async with fleet(redis, "a", "b") as (_twilio, (a, b)):
            sid = "CA" + "7" * 32
            reports: list[CallReport] = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(call_through, a, sid, b.settings.public_url, reports)
                await answered(a, sid)
                drained = await admin(a.settings, "POST", "/admin/drain")
                record = await wait_for_state(b.settings, sid, "live")
                with trio.fail_after(10):
                    while record["instance"] != "b":
                        await trio.sleep(0.05)
                        record = (await admin(b.settings, "GET", f"/admin/calls/{sid}")).json()
            ended = await wait_for_state(b.settings, sid, "ended")
        report = reports[0]
        assert drained.status_code == 202
        assert report.ended_cleanly
        assert report.completed
        assert (report.moves, len(report.move_gaps_ms)) == (1, 1)
        assert not report.violations
        assert (ended["instance"], ended["end_reason"]) == ("b", "twilio_stop")
        summaries = [line for line in lines if line["event"] == "call.summary" and line["call_sid"] == sid]
        assert [s["end_reason"] for s in summaries] == ["moved", "twilio_stop"]
        assert summaries[1]["moved_from"] == "a"
        replayed = [line for line in lines if line["event"] == "ai.conversation_replayed"]
        assert len(replayed) == 1
        assert replayed[0]["turns"] >= 3
        assert summaries[1]["ai_responses"] == 0  # no second greeting on B

    async def test_with_no_other_instance_serving_a_drain_keeps_its_calls(
        self, redis, log_lines_follow_the_schema
    ):
        """Alone in its fleet, a drained instance moves nothing: its call ends here, cleanly."""
        lines = log_lines_follow_the_schema
        async with fleet(redis, "a") as (_twilio, (a,)):
            sid = "CA" + "8" * 32
            reports: list[CallReport] = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(call_through, a, sid, a.settings.public_url, reports)
                await answered(a, sid)
                await admin(a.settings, "POST", "/admin/drain")
        assert reports[0].ended_cleanly
        assert reports[0].moves == 0
        assert any(line["event"] == "fleet.no_move_target" for line in lines)


async def resume(gateway: Gateway, sid: str, status: str = "in-progress") -> str:
    """Twilio's signed request to the `<Connect action>` once a stream ended."""
    url = gateway.settings.public_url + "/twilio/resume"
    form = {"CallSid": sid, "AccountSid": ACCOUNT, "CallStatus": status, "Direction": "inbound"}
    signature = compute_signature(DEV_TWILIO_AUTH_TOKEN, url, {k: [v] for k, v in form.items()})
    async with httpx2.AsyncClient() as client:
        response = await client.post(url, data=form, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200, response.text
    return response.text


class TestResumeWebhook:
    async def test_what_follows_a_stream_depends_on_whether_the_call_is_moving(self, redis):
        """A moving call gets a new stream (token, same action); a call nobody moves, or one
        whose caller hung up, gets <Hangup/>; so does any call while Redis cannot say."""
        async with fleet(redis, "b") as (_twilio, (b,)):
            assert b.fleet is not None
            moving, idle = "CA" + "5" * 32, "CA" + "6" * 32
            await b.fleet.handoffs.save(Handoff(moving, (("user", "hi"),), "a", time.time()))
            moved = parse_twiml(await resume(b, moving))
            not_moving = await resume(b, idle)
            hung_up = await resume(b, moving, status="completed")
            redis.stop()
            unknown = await resume(b, moving)
        assert moved is not None
        assert moved.parameters["token"].startswith("v1.")
        assert moved.action == b.settings.public_url + "/twilio/resume"
        assert "<Hangup/>" in not_moving
        assert "<Hangup/>" in hung_up
        assert "<Hangup/>" in unknown


class TestTwimlOfAFleet:
    async def test_the_voice_webhook_names_the_resume_action_only_in_a_fleet(self, redis):
        async with fleet(redis, "b") as (_twilio, (b,)):
            in_fleet = await fleet_token_twiml(b)
        async with running() as alone:
            single = await fleet_token_twiml(alone, account=DEV_TWILIO_ACCOUNT_SID)
        assert in_fleet.action == b.settings.public_url + "/twilio/resume"
        assert single.action is None


async def fleet_token_twiml(gateway: Gateway, account: str = ACCOUNT):
    response = await post_voice(gateway.settings, voice_form(new_call_sid(), account))
    assert response.status_code == 200, response.text
    connect = parse_twiml(response.text)
    assert connect is not None
    return connect
