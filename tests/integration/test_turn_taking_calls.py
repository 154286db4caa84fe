"""Turn-taking and resilience over real sockets: simulator -> gateway -> local agent, in real time.

Each test is a real call: the simulator speaks Twilio's protocol over HTTP and WebSocket,
the gateway runs its actors, the local agent answers over its own WebSocket. What the
caller heard is judged from the simulator's recording.
"""

import structlog

from actors.messages import EndReason
from gateway.ai.call_settings import apology_ulaw
from gateway.ai.local_agent.replies import clip
from gateway.settings import DEV_TWILIO_ACCOUNT_SID, DEV_TWILIO_AUTH_TOKEN
from gateway.simulator.audio import caller_phrase
from gateway.simulator.caller import CallScript, simulate_call
from tests.integration.harness import running_gateway
from tests.twilio_rest_fake import fake_twilio_rest

ACCOUNT = "AC" + "7" * 32
LEAD_MS = 100


def summary_of(records):
    [summary] = [record for record in records if record["event"] == "call.summary"]
    return summary


async def place_call(settings, script, account=DEV_TWILIO_ACCOUNT_SID):
    return await simulate_call(settings.public_url, DEV_TWILIO_AUTH_TOKEN, account, script)


class TestBargeIn:
    async def test_interrupting_the_greeting_stops_it_and_truncates_where_the_caller_was(self):
        """Speaking over the greeting: audio stops within lead + 20 ms; truncate = heard within 20 ms."""
        script = CallScript(utterance=caller_phrase(), interrupt_after_ms=1500)
        with structlog.testing.capture_logs() as records:
            async with running_gateway() as settings:
                report = await place_call(settings, script)
        [truncated] = [r for r in records if r["event"] == "ai.truncated"]
        summary = summary_of(records)
        assert report.violations == []
        assert report.completed
        stop_latency = report.assistant_stopped_ms - report.speech_started_ms
        assert stop_latency <= LEAD_MS + 20
        assert abs(truncated["audio_end_ms"] - report.heard_before_clear_ms) <= 20
        assert summary["truncate_errors"] == 0
        assert summary["underruns"] == 0
        assert not any(r["event"] == "ai.error" for r in records)

    async def test_an_uninterrupted_greeting_plays_whole_with_no_underrun(self):
        """AI audio streamed faster than real time reaches the ear contiguous: 0 underruns."""
        script = CallScript(utterance=caller_phrase())
        with structlog.testing.capture_logs() as records:
            async with running_gateway() as settings:
                report = await place_call(settings, script)
        assert clip("greeting") in report.heard
        assert summary_of(records)["underruns"] == 0


class TestProviderDrop:
    async def test_a_drop_mid_greeting_is_followed_by_the_same_conversation(self):
        """The AI drops mid-answer; a new session gets the conversation so far and answers the caller."""
        script = CallScript(utterance=caller_phrase())
        with structlog.testing.capture_logs() as records:
            async with running_gateway({"GATEWAY_LOCAL_AGENT_DROP_AFTER_DELTAS": "20"}) as settings:
                report = await place_call(settings, script)
        summary = summary_of(records)
        replayed = [r for r in records if r["event"] == "ai.conversation_replayed"]
        agent_items = [r for r in records if r["event"] == "local_agent.item_created"]
        assert summary["ai_reconnects"] == 1
        assert summary["ai_sessions"] == 2
        assert replayed[0]["turns"] >= 1  # the part of the greeting that was said
        assert agent_items[0]["role"] == "assistant"  # the new session knows what the agent said
        assert report.completed
        spoken = caller_phrase()[400:16000]
        assert (
            spoken in report.heard[int(report.greeting_ms * 8) :]
        )  # the caller's turn was answered after the drop
        assert summary["end_reason"] == "twilio_stop"


class TestTools:
    async def test_pressing_9_gets_a_goodbye_played_whole_then_a_rest_hang_up(self):
        """The agent says goodbye and calls end_call; the goodbye is heard whole, then REST hangs up."""
        script = CallScript(utterance=b"", dtmf=((1.0, "9"),), max_seconds=30)
        with structlog.testing.capture_logs() as records:
            async with fake_twilio_rest() as twilio:
                env = {"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_API_BASE_URL": twilio.url}
                async with running_gateway(env) as settings:
                    report = await place_call(settings, script, ACCOUNT)
        summary = summary_of(records)
        assert summary["end_reason"] == EndReason.AI_HANGUP
        assert clip("goodbye") in report.heard
        assert [(r.path.rsplit("/", 1)[-1], r.form) for r in twilio.requests] == [
            (f"{report.call_sid}.json", {"Status": ["completed"]})
        ]
        assert report.close_code == 1000
        assert report.violations == []

    async def test_pressing_0_transfers_the_call_with_a_dial(self):
        """The agent announces the transfer and calls transfer_call; Twilio REST gets <Dial> to the line."""
        script = CallScript(utterance=b"", dtmf=((1.0, "0"),), max_seconds=30)
        with structlog.testing.capture_logs() as records:
            async with fake_twilio_rest() as twilio:
                env = {
                    "TWILIO_ACCOUNT_SID": ACCOUNT,
                    "TWILIO_API_BASE_URL": twilio.url,
                    "GATEWAY_TRANSFER_TO": "+15550001111",
                }
                async with running_gateway(env) as settings:
                    report = await place_call(settings, script, ACCOUNT)
        assert summary_of(records)["end_reason"] == EndReason.TRANSFERRED
        assert clip("transferring") in report.heard
        [transfer] = twilio.requests
        assert transfer.form["Twiml"] == [
            '<?xml version="1.0" encoding="UTF-8"?><Response><Dial>+15550001111</Dial></Response>'
        ]


class TestUnavailableAI:
    async def test_the_caller_hears_an_apology_when_no_ai_can_be_reached(self):
        """Nothing answers at the AI's address: bounded retries, an apology, end as ai_unavailable (1013)."""
        script = CallScript(utterance=b"", max_seconds=30)
        env = {
            "GATEWAY_AI_PROVIDER": "openai",
            "OPENAI_API_KEY": "sk-test",
            "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        }
        with structlog.testing.capture_logs() as records:
            async with running_gateway(env, ai_reconnect_attempts=2, ai_reconnect_initial_ms=50) as settings:
                report = await place_call(settings, script)
        summary = summary_of(records)
        assert apology_ulaw() in report.heard
        assert summary["end_reason"] == "ai_unavailable"
        assert summary["ai_reconnects"] == 2
        assert report.close_code == 1013
