"""Groups DTMF key presses into what the caller meant to type, sans-I/O.

Callers type menu choices, PINs and account numbers one key at a time; sending each key
to the AI as its own turn would make it answer after every digit. Keys are collected
until `inter_digit_ms` pass without a press, or a terminator key (`#`) is pressed.
"""

from __future__ import annotations


class DtmfCollector:
    def __init__(self, inter_digit_ms: float, terminators: str = "#") -> None:
        self._gap = inter_digit_ms / 1000
        self._terminators = terminators
        self._keys: list[str] = []
        self._deadline: float | None = None

    @property
    def deadline(self) -> float | None:
        """When the keys collected so far form a complete entry, if no key follows."""
        return self._deadline

    def press(self, key: str, now: float) -> str | None:
        """Add a key; return the complete entry if it was a terminator."""
        self._keys.append(key)
        if key in self._terminators:
            return self._complete()
        self._deadline = now + self._gap
        return None

    def expire(self, now: float) -> str | None:
        """Return the entry if its deadline has passed."""
        if self._deadline is not None and now >= self._deadline:
            return self._complete()
        return None

    def _complete(self) -> str:
        keys = "".join(self._keys)
        self._keys.clear()
        self._deadline = None
        return keys


def describe_keys(keys: str) -> str:
    """The keypad entry as a sentence for the AI."""
    return f"The caller pressed {', '.join(keys)} on the phone keypad."
