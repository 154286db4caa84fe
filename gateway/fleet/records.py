"""Call records as Redis hashes: one field per record field, each value JSON.

Fields that are None are left out of the hash, so "set it unless it is set" is HSETNX and a
change to None is HDEL. Pure functions, no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import orjson

from gateway.calls.registry import CallRecord, CallState

_FIELDS = {f.name for f in dataclasses.fields(CallRecord)}


def encode(changes: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """(fields to set, fields to delete) for these record fields."""
    unknown = set(changes) - _FIELDS
    if unknown:
        raise TypeError(f"not call record fields: {sorted(unknown)}")
    present = {
        name: orjson.dumps(_plain(value)).decode() for name, value in changes.items() if value is not None
    }
    absent = [name for name, value in changes.items() if value is None]
    return present, absent


def decode(fields: Mapping[str, str]) -> CallRecord | None:
    """The record in a hash; None for an empty (missing) or unreadable one."""
    if not fields:
        return None
    try:
        values = {name: orjson.loads(raw) for name, raw in fields.items() if name in _FIELDS}
        values["state"] = CallState(values["state"])
        return CallRecord(**values)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, CallState) else value
