"""A real call: the gateway as its own process, the simulator CLI playing Twilio, the local agent.

The caller must hear the greeting and its own words played back; the stream must see 0
protocol violations and end cleanly; the gateway must write exactly one summary record
for the call; every line it writes must be JSON that validates against the documented
log schema (docs/log-events.schema.json); no secret and no full phone number may appear.
"""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from actors import g711
from gateway.ai.local_agent.replies import clip
from gateway.observability.log_schema import json_schema
from gateway.simulator.audio import caller_phrase
from tests.e2e.process import API_KEY, AUTH_TOKEN, REPO, GatewayProcess, gateway_env


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
    gateway = GatewayProcess(
        gateway_env(GATEWAY_AI_AUDIO_FORMAT=audio_format, GATEWAY_INSTANCE_ID="e2e-gw-1")
    )
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
    validator = jsonschema.Draft202012Validator(json_schema())
    problems = [f"{r['event']}: {e.message}" for r in records for e in validator.iter_errors(r)]
    assert problems == []
    assert {r["instance"] for r in records} == {"e2e-gw-1"}
    assert next(r for r in records if r.get("call_sid") == report["call_sid"])["event"] == "call.webhook"
    summaries = [r for r in records if r["event"] == "call.summary"]
    assert len(summaries) == 1
    summary = summaries[0]
    assert summary["call_sid"] == report["call_sid"]
    assert summary["end_reason"] == "twilio_stop"
    assert summary["audio_format"] == audio_format
    assert summary["frames_in"] == report["frames_sent"]
    assert summary["frames_out"] == report["frames_received"]
    assert set(summary["drops"].values()) == {0}
    assert (summary["from"], summary["to"], summary["direction"]) == (
        "+*******0006",
        "+*******0001",
        "inbound",
    )
    assert summary["uplink_latency_ms"]["samples"] == report["frames_sent"]
    assert summary["downlink_latency_ms"]["p99"] is not None
    output = "\n".join(gateway.lines)
    assert AUTH_TOKEN not in output
    assert API_KEY not in output
    assert "+15005550006" not in output
    assert "+15005550001" not in output


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
