"""What the local agent says, and when it calls a tool, sans-I/O.

It has no language model, so its answers are fixed rules over the conversation:

- a caller utterance waiting for an answer: play it back;
- a keypad entry containing 9: say goodbye and call `end_call`;
- a keypad entry containing 0: announce a transfer and call `transfer_call`;
- any other keypad entry: play the keys back as DTMF tones;
- anything else asked of it (a tool result, a note): a short two-tone chime;
- nothing at all yet: the greeting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

import numpy as np

from actors import g711

GREETING_TRANSCRIPT = "Hello, this is the loopback agent. Say something, and I will play it back."
_KEYS = re.compile(r"The caller pressed (.+) on the phone keypad")

# Row and column tones of the telephone keypad (ITU-T Q.23).
_DTMF = {
    "1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "A": (697, 1633),
    "4": (770, 1209), "5": (770, 1336), "6": (770, 1477), "B": (770, 1633),
    "7": (852, 1209), "8": (852, 1336), "9": (852, 1477), "C": (852, 1633),
    "*": (941, 1209), "0": (941, 1336), "#": (941, 1477), "D": (941, 1633),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Reply:
    audio_ulaw: bytes  # 8 kHz mu-law; converted to the session's output format when sent
    transcript: str
    tool: str = ""  # a function to call after speaking, if any
    arguments: str = "{}"


@cache
def clip(name: str) -> bytes:
    """A packaged clip (greeting, goodbye, transferring), mu-law 8 kHz."""
    return files("gateway.ai.local_agent").joinpath(f"clips/{name}.ulaw").read_bytes()


def greeting() -> Reply:
    return Reply(clip("greeting"), GREETING_TRANSCRIPT)


def echo(utterance_ulaw: bytes) -> Reply:
    seconds = len(utterance_ulaw) / 8000
    return Reply(utterance_ulaw, f"(your words played back, {seconds:.1f} seconds)")


def to_text(text: str) -> Reply:
    """The answer to a text item: keypad entries have their own rules, the rest a chime."""
    match = _KEYS.search(text)
    if match is None:
        return Reply(_tones([(660, 0), (880, 0)], 120), "(chime)")
    keys = match.group(1).replace(", ", "")
    if "9" in keys:
        return Reply(
            clip("goodbye"), "Thanks for calling. Goodbye!", "end_call", '{"reason":"caller pressed 9"}'
        )
    if "0" in keys:
        return Reply(
            clip("transferring"),
            "One moment, I am transferring you now.",
            "transfer_call",
            '{"reason":"caller pressed 0"}',
        )
    pairs = [_DTMF[key] for key in keys if key in _DTMF]
    return Reply(_tones(pairs, 100), f"(the keys you pressed: {', '.join(keys)})")


def _tones(pairs: list[tuple[int, int]], tone_ms: int) -> bytes:
    """Each pair of frequencies as a tone of `tone_ms`, with 50 ms gaps, as mu-law."""
    t = np.arange(8 * tone_ms) / 8000
    gap = np.zeros(400)
    parts = []
    for low, high in pairs:
        tone = np.sin(2 * np.pi * low * t) + (np.sin(2 * np.pi * high * t) if high else 0)
        parts += [tone * 6000, gap]
    return g711.encode(np.concatenate(parts).astype(np.int16)) if parts else b""
