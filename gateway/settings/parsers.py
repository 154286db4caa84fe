"""Parsers of setting values: each takes what the user wrote and returns the value or raises
`ValueError` with the half-sentence that follows the setting's name in the error."""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from gateway.settings.secret import Secret

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def text(value: Any) -> str:
    """A string, stripped."""
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {value!r}")
    return value.strip()


def nonempty(value: Any) -> str:
    given = text(value)
    if not given:
        raise ValueError("must not be empty")
    return given


def integer(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        text = str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
        if not text.lstrip("-").isdigit() or not low <= int(text) <= high:
            raise ValueError(f"must be an integer from {low} to {high}, got {value!r}")
        return int(text)

    return parse


def number(low: float, high: float) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        try:
            parsed = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            parsed = math.nan
        if not low <= parsed <= high:
            raise ValueError(f"must be a number from {low} to {high}, got {value!r}")
        return parsed

    return parse


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"must be true or false, got {value!r}")


def choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        given = text(value).lower()
        if given not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}")
        return given

    return parse


def http_url(value: Any) -> str:
    given = text(value).rstrip("/")
    if not given:
        return ""
    parts = urlsplit(given)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"must be an http:// or https:// URL, got {given!r}")
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query string or fragment")
    return given


def account_sid(value: Any) -> str:
    given = text(value)
    if given and not (given.startswith("AC") and len(given) == 34 and given[2:].isalnum()):
        raise ValueError("must look like AC followed by 32 characters")
    return given


def e164_or_empty(value: Any) -> str:
    given = text(value)
    if given and not _E164.fullmatch(given):
        raise ValueError(f"must be an E.164 phone number like +15551234567, got {given!r}")
    return given


def e164_list(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError(f"must be a list of E.164 numbers, got {value!r}")
    return tuple(entry for entry in (e164_or_empty(item) for item in items) if entry)


def secret(value: Any) -> Secret:
    return Secret(text(value))


def redis_url(value: Any) -> Secret:
    """A Redis URL (kept secret: it may carry a password), or empty for no fleet."""
    given = text(value)
    if given and urlsplit(given).scheme not in ("redis", "rediss", "unix"):
        raise ValueError("must start with redis://, rediss:// or unix://")
    return Secret(given)


def secret_key(minimum: int) -> Callable[[Any], Secret]:
    def parse(value: Any) -> Secret:
        given = text(value)
        if given and len(given) < minimum:
            raise ValueError(f"must be at least {minimum} characters (e.g. `openssl rand -hex 32`)")
        return Secret(given)

    return parse


def is_loopback(host: str | None) -> bool:
    if host in {"localhost", "ip6-localhost"}:
        return True
    try:
        return ipaddress.ip_address((host or "").strip("[]")).is_loopback
    except ValueError:
        return False
