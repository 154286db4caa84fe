"""Graceful drain with a real gateway process, real simulated calls and real signals.

SIGTERM must turn readiness off at once and decline new calls while the live ones go
on; at the drain deadline (or a second signal) each call is ended in order, with 1001
and its summary record; if the calls end first, the process exits as soon as they have.
"""

from __future__ import annotations

import signal
import sys

import httpx2
import trio

from gateway.process.signals import REPEAT_WINDOW_S
from gateway.settings import DEV_TWILIO_ACCOUNT_SID
from gateway.simulator.audio import caller_phrase
from gateway.simulator.caller import CallReport, CallScript, simulate_call
from gateway.twilio.signature import compute_signature
from tests.e2e.process import AUTH_TOKEN, GatewayProcess, gateway_env
from tests.integration.harness import new_call_sid, voice_form


async def place_call(url: str, reports: list[CallReport]) -> None:
    script = CallScript(utterance=caller_phrase())
    reports.append(await simulate_call(url, AUTH_TOKEN, DEV_TWILIO_ACCOUNT_SID, script))


async def readiness(url: str) -> httpx2.Response:
    async with httpx2.AsyncClient() as client:
        return await client.get(url + "/readyz")


async def wait_in_flight(url: str, calls: int) -> None:
    with trio.fail_after(20):
        while True:
            if (await readiness(url)).json()["in_flight"] == calls:
                return
            await trio.sleep(0.1)


async def post_webhook(url: str) -> httpx2.Response:
    form = voice_form(new_call_sid())
    signature = compute_signature(AUTH_TOKEN, url + "/twilio/voice", {k: [v] for k, v in form.items()})
    async with httpx2.AsyncClient() as client:
        return await client.post(url + "/twilio/voice", data=form, headers={"X-Twilio-Signature": signature})


async def exit_code(gateway: GatewayProcess, seconds: float) -> int:
    return await trio.to_thread.run_sync(gateway.wait, seconds)


def events(gateway: GatewayProcess) -> list[str]:
    return [record["event"] for record in gateway.records()]


def summaries(gateway: GatewayProcess) -> dict[str, dict]:
    return {r["call_sid"]: r for r in gateway.records() if r["event"] == "call.summary"}


async def test_sigterm_drains_then_ends_each_call_with_1001_and_its_summary():
    gateway = GatewayProcess(gateway_env(GATEWAY_DRAIN_SECONDS="3"))
    reports: list[CallReport] = []
    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(place_call, gateway.url, reports)
        await wait_in_flight(gateway.url, 3)
        await trio.sleep(0.5)
        gateway.signal(signal.SIGTERM)
        await trio.sleep(0.2)
        not_ready = await readiness(gateway.url)
        declined = await post_webhook(gateway.url)
        code = await exit_code(gateway, 30)

    assert code == 0
    assert not_ready.status_code == 503
    assert not_ready.json()["reason"] == "draining"
    assert "<Hangup/>" in declined.text
    assert "<Stream" not in declined.text
    assert len(reports) == 3
    for report in reports:
        assert report.violations == []
        assert report.close_code == 1001
    ended = summaries(gateway)
    assert set(ended) == {report.call_sid for report in reports}
    for summary in ended.values():
        assert summary["end_reason"] == "shutdown"
        assert summary["close_code"] == 1001
    order = events(gateway)
    assert order.index("gateway.draining") < order.index("gateway.drain_deadline")
    assert order.index("gateway.drain_deadline") < order.index("call.summary")  # calls ran to the deadline
    assert order[-1] == "gateway.stopped"
    [deadline] = [r for r in gateway.records() if r["event"] == "gateway.drain_deadline"]
    assert deadline["live_calls"] == 3
    assert deadline["cause"] == "deadline"


async def test_calls_that_end_before_the_deadline_end_the_drain_with_them():
    gateway = GatewayProcess(gateway_env(GATEWAY_DRAIN_SECONDS="120"))
    reports: list[CallReport] = []
    async with trio.open_nursery() as nursery:
        for _ in range(2):
            nursery.start_soon(place_call, gateway.url, reports)
        await wait_in_flight(gateway.url, 2)
        gateway.signal(signal.SIGTERM)
        code = await exit_code(gateway, 60)  # far less than the 120 s deadline

    assert code == 0
    assert all(report.ended_cleanly and report.close_code == 1000 for report in reports)
    assert {s["end_reason"] for s in summaries(gateway).values()} == {"twilio_stop"}
    assert len(summaries(gateway)) == 2
    assert "gateway.drain_deadline" not in events(gateway)


async def test_a_second_signal_ends_the_calls_now():
    gateway = GatewayProcess(gateway_env(GATEWAY_DRAIN_SECONDS="120"))
    reports: list[CallReport] = []
    async with trio.open_nursery() as nursery:
        for _ in range(2):
            nursery.start_soon(place_call, gateway.url, reports)
        await wait_in_flight(gateway.url, 2)
        gateway.signal(signal.SIGTERM)
        # Well past REPEAT_WINDOW_S as the gateway sees it: under load it may handle the
        # first signal late, and a second one inside the window is taken for a repeat.
        await trio.sleep(3 * REPEAT_WINDOW_S)
        gateway.signal(signal.SIGINT)
        code = await exit_code(gateway, 30)

    assert code == 0
    assert [report.close_code for report in reports] == [1001, 1001]
    assert {s["end_reason"] for s in summaries(gateway).values()} == {"shutdown"}
    signals = [r for r in gateway.records() if r["event"] == "gateway.signal"]
    assert [(s["signal"], s["action"]) for s in signals] == [("SIGTERM", "drain"), ("SIGINT", "end_calls")]
    [deadline] = [r for r in gateway.records() if r["event"] == "gateway.drain_deadline"]
    assert deadline["cause"] == "second_signal"


async def test_a_prestop_drain_waits_for_the_calls_and_the_sigterm_after_it_exits_at_once():
    """`gateway drain --wait`, as the Kubernetes preStop hook runs it, then SIGTERM."""
    admin_token = "e2e-admin-token-81d2"
    gateway = GatewayProcess(gateway_env(GATEWAY_DRAIN_SECONDS="120", GATEWAY_ADMIN_TOKEN=admin_token))
    reports: list[CallReport] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(place_call, gateway.url, reports)
        await wait_in_flight(gateway.url, 1)
        command = [sys.executable, "-m", "gateway", "drain", "--wait", "--url", gateway.url]
        hook = await trio.run_process(
            command, env=gateway_env(GATEWAY_ADMIN_TOKEN=admin_token), capture_stdout=True, check=False
        )
        not_ready = await readiness(gateway.url)
        gateway.signal(signal.SIGTERM)
        code = await exit_code(gateway, 10)

    assert hook.returncode == 0
    assert hook.stdout.decode().splitlines() == [
        "draining: 1 live calls",
        "draining: 1 calls in flight",
        "drained: no call in flight",
    ]
    assert not_ready.status_code == 503
    assert code == 0
    assert reports[0].ended_cleanly
    [summary] = summaries(gateway).values()
    assert summary["end_reason"] == "twilio_stop"
    [draining] = [r for r in gateway.records() if r["event"] == "gateway.draining"]
    assert draining["trigger"] == "operator"
