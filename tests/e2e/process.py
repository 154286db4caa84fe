"""A gateway as its own process, as an operator runs it, for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests import secret_watch

REPO = Path(__file__).parents[2]
AUTH_TOKEN = "e2e-twilio-auth-token-5f1c"  # a test value that must never be logged
API_KEY = "sk-e2e-must-never-appear-in-logs"
secret_watch.watch(AUTH_TOKEN)
secret_watch.watch(API_KEY)


class GatewayProcess:
    def __init__(self, env: dict[str, str], args: tuple[str, ...] = ()) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", "config/default.toml", *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._started = threading.Event()
        self.url = ""
        threading.Thread(target=self._read, daemon=True).start()
        if not self._started.wait(30):
            self.stop()
            pytest.fail("gateway did not start:\n" + "\n".join(self.lines))

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            secret_watch.process_lines.append(line)
            if '"gateway.started"' in line:
                self.url = json.loads(line)["voice_webhook"].removesuffix("/twilio/voice")
                self._started.set()

    def stop(self, timeout: float = 20) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.lines]


def gateway_env(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GATEWAY_", "TWILIO_", "OPENAI_"))
    }
    return {
        **env,
        "GATEWAY_PORT": "0",
        "GATEWAY_LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "OPENAI_API_KEY": API_KEY,
        **extra,
    }
