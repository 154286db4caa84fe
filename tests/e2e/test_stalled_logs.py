"""A log pipe that stops being read does not stop calls: lines are dropped and counted."""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys

from tests.e2e.process import AUTH_TOKEN, REPO, gateway_env

F_SETPIPE_SZ = 1031  # Linux


def test_a_call_completes_while_nobody_reads_the_gateways_logs(tmp_path):
    gateway = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--config", "config/default.toml"],
        cwd=REPO,
        env=gateway_env(GATEWAY_LOG_LEVEL="debug", GATEWAY_LOG_BUFFER_BYTES="8192"),
        stdout=subprocess.PIPE,
    )
    try:
        assert gateway.stdout is not None
        fcntl.fcntl(gateway.stdout.fileno(), F_SETPIPE_SZ, 4096)  # a pipe that fills at once
        started = {}
        while started.get("event") != "gateway.started":
            started = json.loads(gateway.stdout.readline())
        url = started["voice_webhook"].removesuffix("/twilio/voice")
        # From here on nobody reads the gateway's stdout until the call is over.
        call = subprocess.run(
            [sys.executable, "-m", "gateway", "simulate-call", "--url", url, "--auth-token", AUTH_TOKEN,
             "--json", "--max-seconds", "30"],
            cwd=REPO, env=gateway_env(), capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        report = json.loads(call.stdout)
        assert report["completed"], call.stderr
        assert report["violations"] == []
    finally:
        gateway.terminate()
        rest, _ = gateway.communicate(timeout=30)
    lines = [json.loads(line) for line in rest.splitlines() if line.strip()]
    dropped = [line["dropped"] for line in lines if line["event"] == "log.dropped"]
    assert dropped, "the log writer said nothing of the lines it could not write"
    assert all(count > 0 for count in dropped)
