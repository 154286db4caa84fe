"""A real call: the gateway as its own process, the simulator CLI playing Twilio, the local agent.

The caller must hear the greeting and its own words played back; the stream must see 0
protocol violations and end cleanly; the gateway must write exactly one summary record
for the call, every log line must be JSON, and no secret may appear in the output.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import wave
from pathlib import Path

import numpy as np
import pytest

from actors import g711
from gateway.local_agent.replies import clip
from gateway.simulator.audio import caller_phrase

REPO = Path(__file__).parents[2]
AUTH_TOKEN = "e2e-twilio-auth-token-5f1c"  # a test value that must never be logged
API_KEY = "sk-e2e-must-never-appear-in-logs"


class GatewayProcess:
    def __init__(self, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", "config/default.toml"],
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
            if '"gateway.started"' in line:
                self.url = json.loads(line)["voice_webhook"].removesuffix("/twilio/voice")
                self._started.set()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)

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


def simulate(url: str, record: Path) -> tuple[int, dict]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "simulate-call",
            "--url",
            url,
            "--auth-token",
            AUTH_TOKEN,
            "--record",
            str(record),
            "--json",
        ],
        cwd=REPO,
        env=gateway_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


def heard_pcm(path: Path) -> np.ndarray:
    with wave.open(str(path)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(float)


def locate(heard: np.ndarray, clip_ulaw: bytes) -> tuple[float, float]:
    """Where `clip` best matches inside `heard` (seconds) and how well (normalised correlation)."""
    clip = g711.decode(clip_ulaw).astype(float)
    correlation = np.correlate(heard, clip, mode="valid")
    at = int(np.argmax(correlation))
    segment = heard[at : at + len(clip)]
    return at / 8000, float(correlation[at] / np.sqrt(np.sum(segment**2) * np.sum(clip**2)))


@pytest.mark.parametrize("audio_format", ["pcmu", "pcm24k"])
def test_caller_hears_greeting_and_own_words_over_a_real_call(tmp_path, audio_format):
    """Simulated Twilio -> gateway process -> local agent and back: greeting, echo, clean end, one summary."""
    gateway = GatewayProcess(gateway_env(GATEWAY_AI_AUDIO_FORMAT=audio_format))
    try:
        exit_code, report = simulate(gateway.url, tmp_path / "heard.wav")
    finally:
        assert gateway.stop() == 0

    assert exit_code == 0, report
    assert report["completed"]
    assert report["violations"] == []
    assert report["close_code"] == 1000
    assert report["marks_received"] == report["mark_echoes_sent"] >= 2

    heard = heard_pcm(tmp_path / "heard.wav")
    greeting_at, greeting_match = locate(heard, clip("greeting"))
    spoken = caller_phrase()[400:16000]  # the spoken part of the phrase, inside what the agent echoes
    echo_at, echo_match = locate(heard, spoken)
    expected = 0.999 if audio_format == "pcmu" else 0.9  # passthrough is bit-exact; transcoding is not
    assert greeting_match > expected
    assert echo_match > expected
    assert greeting_at < 1.0 < greeting_at + len(clip("greeting")) / 8000 < echo_at

    records = gateway.records()  # every line parsed as JSON, or this fails
    summaries = [r for r in records if r["event"] == "call.summary"]
    assert len(summaries) == 1
    summary = summaries[0]
    assert summary["call_sid"] == report["call_sid"]
    assert summary["end_reason"] == "twilio_stop"
    assert summary["audio_format"] == audio_format
    assert summary["frames_in"] == report["frames_sent"]
    assert summary["frames_out"] == report["media_received"]
    assert set(summary["drops"].values()) == {0}
    output = "\n".join(gateway.lines)
    assert AUTH_TOKEN not in output
    assert API_KEY not in output


def test_bad_configuration_stops_start_up_with_one_line():
    """A bad setting: exit code 2 and a single line naming it, no traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "run"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=gateway_env(GATEWAY_PORT="http"),
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "gateway: configuration error: GATEWAY_PORT must be an integer from 0 to 65535, got 'http'"
    ]
