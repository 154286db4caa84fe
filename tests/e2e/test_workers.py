"""`gateway run --workers 2` as an operator runs it: one port, two worker processes that
each carry calls, a killed worker started again while the other's calls go on, and one
SIGTERM that drains both. Against a real redis-server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx2
import pytest
import trio

from gateway.settings import DEV_TWILIO_ACCOUNT_SID
from gateway.simulator.audio import caller_phrase
from gateway.simulator.caller import CallReport, CallScript, simulate_call
from tests import secret_watch
from tests.e2e.process import AUTH_TOKEN, REPO, GatewayProcess, gateway_env
from tests.redis_server import RedisServer, redis_server

ADMIN_TOKEN = "e2e-admin-token-7d41"  # a test value that must never be logged
secret_watch.watch(ADMIN_TOKEN)
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def redis():
    with redis_server() as server:
        yield server


def workers(redis: RedisServer) -> GatewayProcess:
    env = gateway_env(
        GATEWAY_REDIS_URL=redis.url,
        GATEWAY_INSTANCE_ID="host",
        GATEWAY_DRAIN_SECONDS="30",
        GATEWAY_ADMIN_TOKEN=ADMIN_TOKEN,
    )
    return GatewayProcess(env, ("--workers", "2"))


async def place_calls(url: str, count: int) -> list[CallReport]:
    reports: list[CallReport] = []

    async def one() -> None:
        script = CallScript(utterance=caller_phrase())
        reports.append(await simulate_call(url, AUTH_TOKEN, DEV_TWILIO_ACCOUNT_SID, script))

    async with trio.open_nursery() as nursery:
        for _ in range(count):
            nursery.start_soon(one)
    return reports


async def admin_get(url: str, path: str) -> dict:
    async with httpx2.AsyncClient() as client:
        response = await client.get(url + path, headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


async def instances(url: str, want: set[str], seconds: float = 20) -> set[str]:
    with trio.fail_after(seconds):
        while True:
            seen = {m["instance"] for m in (await admin_get(url, "/admin/instances"))["instances"]}
            if want <= seen:
                return seen
            await trio.sleep(0.2)


def worker_pids(gateway: GatewayProcess) -> dict[int, int]:
    return {r["worker"]: r["pid"] for r in gateway.records() if r.get("event") == "workers.started"}


class TestWorkers:
    async def test_two_workers_share_the_port_and_both_carry_calls(self, redis):
        """Eight calls at once through one port: all end cleanly, and the call records name
        both workers (the kernel spread the connections)."""
        gateway = workers(redis)
        try:
            await instances(gateway.url, {"host-w0", "host-w1"})
            reports = await place_calls(gateway.url, 8)
            calls = (await admin_get(gateway.url, "/admin/calls"))["calls"]
        finally:
            code = gateway.stop(timeout=40)
        assert all(report.ended_cleanly for report in reports), reports
        assert {call["instance"] for call in calls} == {"host-w0", "host-w1"}
        assert code == 0
        assert any(r.get("event") == "workers.stopped" for r in gateway.records())

    async def test_a_killed_worker_is_started_again_and_the_other_keeps_its_calls(self, redis):
        """SIGKILL to worker 0 mid-call: the parent starts it again as host-w0.1; calls on
        worker 1 end cleanly and new calls are served."""
        gateway = workers(redis)
        try:
            await instances(gateway.url, {"host-w0", "host-w1"})
            async with trio.open_nursery() as nursery:
                results: list[list[CallReport]] = []

                async def calls() -> None:
                    results.append(await place_calls(gateway.url, 6))

                nursery.start_soon(calls)
                await trio.sleep(2)
                os.kill(worker_pids(gateway)[0], signal.SIGKILL)
            await instances(gateway.url, {"host-w0.1", "host-w1"})
            after = await place_calls(gateway.url, 4)
            calls_by_instance = (await admin_get(gateway.url, "/admin/calls"))["calls"]
        finally:
            code = gateway.stop(timeout=40)
        ended = {c["call_sid"]: c for c in calls_by_instance}
        on_survivor = [r for r in results[0] if ended.get(r.call_sid, {}).get("instance") == "host-w1"]
        assert on_survivor, "no call went to worker 1"
        assert all(report.ended_cleanly for report in on_survivor)
        assert all(report.ended_cleanly for report in after)
        assert any(r.get("event") == "workers.exited" and r["worker"] == 0 for r in gateway.records())
        assert code == 0


def test_more_than_one_worker_without_redis_is_refused_in_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "run", "--workers", "2"],
        cwd=REPO, env=gateway_env(), capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "gateway: configuration error: --workers 2 needs GATEWAY_REDIS_URL: "
        "workers share their calls in Redis"
    )
