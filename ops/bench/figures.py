"""The capacity benchmark's figures, from what the three processes recorded.

The load generator (`load.npz`) kept, per call, the send time of every frame, the
arrival and size of every media message heard, and each `clear` with how much of the
answer had played by then; the benchmark AI (`ai.npz`) kept, per session, the arrival of
every append, the departure of every audio delta and every `speech_started`, and every
truncation it was asked for. All on the shared CLOCK_MONOTONIC; sessions are matched to
calls by their identity frames.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

LEAD_SECONDS = 0.100  # the playout lead a pacer keeps ahead of the ear (the gateway's default)
GAP_SECONDS = 0.5  # silence between two answers heard by a caller
CHUNK_BYTES = 800  # 100 ms of 8 kHz mu-law: the audio in one benchmark-AI delta
CLEAR_WINDOW_SECONDS = 1.0  # a clear this long after speech_started answers it
TRUNCATE_WINDOW_SECONDS = 0.25  # a truncation this close to a clear is for that barge-in


def server_figures(
    samples: list[tuple[float, float, float, int]], calls: int, begin: float, end: float, idle_rss: int
) -> dict[str, Any]:
    """CPU per call-second and RSS per call over the window when all calls are up."""
    window = [s for s in samples if begin <= s[0] <= end]
    if len(window) < 2:
        raise RuntimeError("the steady window is empty: make --seconds longer than --ramp + 3")
    (t0, user0, kernel0, _), (t1, user1, kernel1, _) = window[0], window[-1]
    cpu = user1 - user0 + kernel1 - kernel0
    peak_rss = max(s[3] for s in window)
    return {
        "cpu_ms_per_call_second": round(cpu * 1000 / (calls * (t1 - t0)), 3),
        "cpu_share": round(cpu / (t1 - t0), 3),
        "kernel_share": round((kernel1 - kernel0) / max(cpu, 1e-9), 3),
        "rss_idle_mb": round(idle_rss / 1024, 1),
        "rss_kb_per_call": round((peak_rss - idle_rss) / calls, 1),
    }


def latency_figures(load_file: Path, ai_file: Path) -> dict[str, Any]:
    load, ai = np.load(load_file), np.load(ai_file)
    sessions = {int(ai[f"s{j}_call"]): j for j in range(int(ai["sessions"])) if len(ai[f"s{j}_appends"])}
    uplink, first_audio, chunks, clears, truncation = [], [], [], [], []
    unmatched = 0
    for call in range(int(load["calls"])):
        if call not in sessions:
            unmatched += 1
            continue
        j = sessions[call]
        sent, appends = load[f"c{call}_sent"], ai[f"s{j}_appends"]
        n = min(len(sent), len(appends))
        uplink.append(appends[:n] - sent[:n])
        deltas, starts = ai[f"s{j}_deltas"], ai[f"s{j}_response_starts"]
        for arrivals, offsets in _answers(load[f"c{call}_heard"], load[f"c{call}_heard_bytes"]):
            first_delta = _response_of(arrivals[0], deltas, starts)
            if first_delta is None:
                continue
            first_audio.append(arrivals[0] - deltas[first_delta])
            chunks.append(_lateness(arrivals, offsets, deltas, first_delta))
        cleared = load[f"c{call}_cleared"]
        clears.append(_clear_latency(cleared, ai[f"s{j}_speech_started"]))
        truncation.append(
            _truncation_error(
                cleared, load[f"c{call}_played_at_clear"], ai[f"s{j}_truncates"], ai[f"s{j}_truncate_ms"]
            )
        )
    return {
        "uplink_ms": _percentiles(_joined(uplink)),
        "downlink_first_audio_ms": _percentiles(np.array(first_audio)),
        "downlink_chunk_lateness_ms": _percentiles(_joined(chunks)),
        "clear_ms": _percentiles(_joined(clears)),
        "truncation_error_ms": _spread(_joined(truncation)),
        "calls_unmatched": unmatched,
    }


def _answers(heard: np.ndarray, sizes: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Media messages heard, split into answers at silences of GAP_SECONDS: each answer's
    arrival times and the byte offset in the answer at which each message begins."""
    if not len(heard):
        return []
    cuts = np.nonzero(np.diff(heard) > GAP_SECONDS)[0] + 1
    answers = []
    for arrivals, lengths in zip(np.split(heard, cuts), np.split(sizes, cuts), strict=True):
        answers.append((arrivals, np.concatenate(([0], np.cumsum(lengths)[:-1]))))
    return answers


def _response_of(first_arrival: float, deltas: np.ndarray, starts: np.ndarray) -> int | None:
    """The first delta of the response an answer heard at `first_arrival` belongs to: the
    last response that began before it."""
    if not len(starts):
        return None
    began = deltas[starts]
    k = int(np.searchsorted(began, first_arrival, side="right")) - 1
    return int(starts[k]) if k >= 0 else None


def _lateness(arrivals: np.ndarray, offsets: np.ndarray, deltas: np.ndarray, first_delta: int) -> np.ndarray:
    """How late each message of an answer reached the caller, beyond a perfect pacer: audio
    at byte offset o is needed once the answer has played for o/8 ms, and a pacer sends it
    LEAD_SECONDS before that, but not before the AI sent the delta that carries it."""
    delta_index = np.minimum(first_delta + offsets // CHUNK_BYTES, len(deltas) - 1)
    ideal = np.maximum(deltas[delta_index], arrivals[0] + offsets / 8000 - LEAD_SECONDS)
    late: np.ndarray = np.maximum(0.0, arrivals - ideal)[1:]
    return late


def _clear_latency(cleared: np.ndarray, speech_started: np.ndarray) -> np.ndarray:
    """speech_started leaving the AI -> the clear reaching the caller, for each clear."""
    if not len(cleared) or not len(speech_started):
        return np.array([])
    k = np.searchsorted(speech_started, cleared, side="right") - 1
    valid = k >= 0
    latency = cleared[valid] - speech_started[k[valid]]
    result: np.ndarray = latency[latency <= CLEAR_WINDOW_SECONDS]
    return result


def _truncation_error(
    cleared: np.ndarray, played_ms: np.ndarray, truncates: np.ndarray, truncate_ms: np.ndarray
) -> np.ndarray:
    """audio_end_ms of each truncation minus what the caller had heard of the answer when
    the clear of that barge-in reached it."""
    if not len(cleared) or not len(truncates):
        return np.array([])
    errors = []
    for when, said in zip(truncates, truncate_ms, strict=True):
        nearest = int(np.argmin(np.abs(cleared - when)))
        if abs(cleared[nearest] - when) <= TRUNCATE_WINDOW_SECONDS:
            errors.append(said / 1000 - played_ms[nearest] / 1000)
    return np.array(errors)


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    parts = [part for part in parts if len(part)]
    return np.concatenate(parts) if parts else np.array([])


def _percentiles(seconds: np.ndarray) -> dict[str, float | int | None]:
    if not len(seconds):
        return {"p50": None, "p99": None, "max": None, "samples": 0}
    ms = seconds * 1000
    return {
        "p50": round(float(np.percentile(ms, 50)), 3),
        "p99": round(float(np.percentile(ms, 99)), 3),
        "max": round(float(ms.max()), 3),
        "samples": len(ms),
    }


def _spread(seconds: np.ndarray) -> dict[str, float | int | None]:
    if not len(seconds):
        return {"min": None, "p50": None, "max": None, "samples": 0}
    ms = seconds * 1000
    return {
        "min": round(float(ms.min()), 1),
        "p50": round(float(np.percentile(ms, 50)), 1),
        "max": round(float(ms.max()), 1),
        "samples": len(ms),
    }


def message_figures(load_summary: dict[str, Any]) -> dict[str, float | None]:
    """Media and mark messages per call-second, each way (as Twilio would count them)."""
    call_seconds = load_summary["call_seconds"]
    if not call_seconds:
        return {"up_media": None, "up_marks": None, "down_media": None, "down_marks": None}
    return {
        "up_media": round(load_summary["frames_sent"] / call_seconds, 2),
        "up_marks": round(load_summary["marks_echoed"] / call_seconds, 2),
        "down_media": round(load_summary["media_heard"] / call_seconds, 2),
        "down_marks": round(load_summary["marks_received"] / call_seconds, 2),
    }


def summary_figures(lines: list[str]) -> dict[str, Any]:
    """Drops, underruns and barge-ins from the gateway's call summaries (None for a server
    that writes none)."""
    summaries = [json.loads(line) for line in lines if '"call.summary"' in line]
    if not summaries:
        return {"summaries": 0, "drops": None, "underruns": None, "barge_ins": None}
    return {
        "summaries": len(summaries),
        "drops": sum(sum(s["drops"].values()) for s in summaries),
        "underruns": sum(s["underruns"] for s in summaries),
        "barge_ins": sum(s["barge_ins"] for s in summaries),
    }
