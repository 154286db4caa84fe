"""What a platform team runs the gateway by, over real loopback HTTP with real calls:
metrics, readiness, admission control, operator drain, and the call's log lines."""

from __future__ import annotations

import time

import httpx2
import trio
from prometheus_client.parser import text_string_to_metric_families

from gateway.settings import DEV_TWILIO_ACCOUNT_SID, DEV_TWILIO_AUTH_TOKEN, Settings
from gateway.simulator.audio import caller_phrase
from gateway.simulator.caller import CallReport, CallScript, simulate_call
from tests.integration.harness import new_call_sid, post_voice, running, running_gateway, voice_form


async def get(settings: Settings, path: str, headers: dict[str, str] | None = None) -> httpx2.Response:
    async with httpx2.AsyncClient() as client:
        return await client.get(settings.public_url + path, headers=headers or {})


async def scrape(settings: Settings) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by (name, sorted labels); returns within 5 s or fails."""
    with trio.fail_after(5):
        response = await get(settings, "/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape_until(settings: Settings, done, seconds: float) -> dict:
    """Scrape every 0.1 s until `done(samples)`; fail after `seconds`."""
    with trio.fail_after(seconds):
        while True:
            samples = await scrape(settings)
            if done(samples):
                return samples
            await trio.sleep(0.1)


async def place_call(settings: Settings, report: list[CallReport] | None = None) -> CallReport:
    script = CallScript(utterance=caller_phrase())
    result = await simulate_call(settings.public_url, DEV_TWILIO_AUTH_TOKEN, DEV_TWILIO_ACCOUNT_SID, script)
    if report is not None:
        report.append(result)
    return result


class TestMetrics:
    async def test_the_listed_series_move_during_a_call(self):
        async with running_gateway() as settings:
            before = await scrape(settings)
            reports: list[CallReport] = []
            async with trio.open_nursery() as nursery:
                nursery.start_soon(place_call, settings, reports)
                during = await scrape_until(
                    settings, lambda s: value(s, "gateway_audio_frames_total", direction="in") >= 50, 10
                )
            after = await scrape(settings)
        assert reports[0].ended_cleanly
        assert value(before, "gateway_active_calls") == 0
        assert value(during, "gateway_active_calls") == 1
        assert value(after, "gateway_active_calls") == 0
        assert value(after, "gateway_calls_total", direction="inbound", outcome="twilio_stop") == 1
        assert value(after, "gateway_call_setup_seconds_count") == 1
        assert value(after, "gateway_ai_connect_seconds_count") == 1
        assert value(after, "gateway_audio_frames_total", direction="in") == reports[0].frames_sent
        assert value(after, "gateway_audio_frames_total", direction="out") == reports[0].frames_received
        for channel in ("caller_audio", "assistant_audio"):
            assert value(after, "gateway_audio_frames_dropped_total", channel=channel) == 0
            assert ("gateway_channel_depth_max", (("channel", channel),)) in after
        assert value(after, "gateway_playout_underruns_total") == 0
        assert value(after, "gateway_ready") == 1
        assert value(after, "gateway_draining") == 0
        assert value(after, "gateway_max_calls") == settings.max_calls
        assert ("gateway_admin_clients", ()) in after
        assert ("gateway_ai_reconnects_total", ()) in after
        assert ("process_resident_memory_bytes", ()) in after

    async def test_barge_in_and_ai_reconnects_are_counted(self):
        env = {"GATEWAY_LOCAL_AGENT_DROP_AFTER_DELTAS": "20"}
        async with running_gateway(env) as settings:
            script = CallScript(utterance=caller_phrase(), interrupt_after_ms=1500)
            report = await simulate_call(
                settings.public_url, DEV_TWILIO_AUTH_TOKEN, DEV_TWILIO_ACCOUNT_SID, script
            )
            after = await scrape(settings)
        assert report.violations == []
        assert value(after, "gateway_ai_reconnects_total") == 1
        assert value(after, "gateway_ai_connect_seconds_count") == 2
        assert value(after, "gateway_barge_in_clear_seconds_count") >= 1

    async def test_metrics_need_the_bearer_token_once_one_is_set(self):
        async with running_gateway({"GATEWAY_METRICS_TOKEN": "scrape-secret"}) as settings:
            missing = await get(settings, "/metrics")
            wrong = await get(settings, "/metrics", {"Authorization": "Bearer nope"})
            right = await get(settings, "/metrics", {"Authorization": "Bearer scrape-secret"})
        assert missing.status_code == wrong.status_code == 401
        assert right.status_code == 200
        assert "gateway_active_calls" in right.text

    async def test_outside_development_mode_metrics_without_a_token_are_refused(self):
        async with running_gateway({"TWILIO_AUTH_TOKEN": "a-real-token"}) as settings:
            response = await get(settings, "/metrics")
        assert response.status_code == 401
        assert "GATEWAY_METRICS_TOKEN" in response.text

    async def test_a_scrape_during_many_calls_returns_promptly(self):
        """Twenty calls in flight; each scrape answers within the 5 s bound `scrape` enforces."""
        async with running_gateway() as settings:
            reports: list[CallReport] = []
            async with trio.open_nursery() as nursery:
                for _ in range(20):
                    nursery.start_soon(place_call, settings, reports)
                await scrape_until(settings, lambda s: value(s, "gateway_active_calls") == 20, 15)
                for _ in range(10):
                    assert value(await scrape(settings), "gateway_active_calls") <= 20
        assert all(report.violations == [] for report in reports)


class TestReadinessAndAdmission:
    async def test_healthz_and_readyz_answer_when_idle(self):
        async with running_gateway() as settings:
            health = await get(settings, "/healthz")
            ready = await get(settings, "/readyz")
        assert health.status_code == 200
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "in_flight": 0, "max_calls": settings.max_calls}

    async def test_past_the_cap_a_call_is_declined_politely_and_counted(self, log_lines_follow_the_schema):
        async with running(stream_token_ttl_s=1.0, max_calls=1) as gateway:
            settings = gateway.settings
            first = await post_voice(settings, voice_form(new_call_sid()))
            second_sid = new_call_sid()
            second = await post_voice(settings, voice_form(second_sid))
            not_ready = await get(settings, "/readyz")
            samples = await scrape(settings)
            await trio.sleep(1.2)  # the first call's stream never came: its token expired
            ready_again = await get(settings, "/readyz")
        assert "<Stream" in first.text
        assert second.status_code == 200
        assert "<Say>" in second.text
        assert "<Hangup/>" in second.text
        assert "<Stream" not in second.text
        assert not_ready.status_code == 503
        assert not_ready.json() == {
            "status": "not_ready",
            "reason": "at_capacity",
            "in_flight": 1,
            "max_calls": 1,
        }
        assert value(samples, "gateway_admission_rejects_total", reason="at_capacity") == 1
        assert value(samples, "gateway_ready") == 0
        assert ready_again.status_code == 200
        [declined] = [line for line in log_lines_follow_the_schema if line["event"] == "call.declined"]
        assert declined["call_sid"] == second_sid
        assert declined["reason"] == "at_capacity"

    async def test_an_operator_drain_turns_readiness_off_and_declines_new_calls(self):
        async with running() as gateway:
            settings = gateway.settings
            await gateway.operations.start_drain()
            ready = await get(settings, "/readyz")
            answer = await post_voice(settings, voice_form(new_call_sid()))
            samples = await scrape(settings)
        assert ready.status_code == 503
        assert ready.json()["reason"] == "draining"
        assert "<Stream" not in answer.text
        assert "<Hangup/>" in answer.text
        assert value(samples, "gateway_admission_rejects_total", reason="draining") == 1
        assert value(samples, "gateway_draining") == 1

    async def test_a_saturated_loop_declines_new_calls_and_readiness_says_why(self):
        """Work that holds the event loop (here: blocking it outright, 300 ms at a time) is
        measured as lag: new calls are declined as overloaded, /readyz says why, and once
        the loop is calm again calls are taken."""
        async with running(max_loop_lag_ms=25.0) as gateway:
            settings = gateway.settings
            for _ in range(6):
                time.sleep(0.3)  # noqa: ASYNC251  (the point: a loop that cannot keep up)
                await trio.sleep(0.11)
            ready = await get(settings, "/readyz")
            answer = await post_voice(settings, voice_form(new_call_sid()))
            samples = await scrape(settings)
            await trio.sleep(5)
            calm = await get(settings, "/readyz")
        assert ready.status_code == 503
        assert (ready.json()["reason"], ready.json()["detail"][:14]) == ("overloaded", "event-loop lag")
        assert "<Stream" not in answer.text
        assert value(samples, "gateway_admission_rejects_total", reason="overloaded") == 1
        assert value(samples, "gateway_overloaded") == 1
        assert calm.status_code == 200


class TestCallLogLines:
    async def test_a_call_writes_one_summary_with_masked_numbers(self, log_lines_follow_the_schema):
        """The fixture validates every line against the schema; this checks what they say."""
        async with running_gateway() as settings:
            report = await place_call(settings)
        lines = log_lines_follow_the_schema
        [summary] = [line for line in lines if line["event"] == "call.summary"]
        assert summary["call_sid"] == report.call_sid
        assert summary["from"] == "+*******0006"
        assert summary["to"] == "+*******0001"
        assert summary["direction"] == "inbound"
        assert summary["end_reason"] == "twilio_stop"
        assert summary["uplink_latency_ms"]["samples"] == report.frames_sent
        assert summary["downlink_latency_ms"]["samples"] > 0
        call_lines = [line for line in lines if line.get("call_sid") == report.call_sid]
        assert {"call.webhook", "call.started", "ai.session_created", "call.summary"} <= {
            line["event"] for line in call_lines
        }
        text = "\n".join(str(line) for line in lines)
        assert "+15005550006" not in text
        assert "+15005550001" not in text
