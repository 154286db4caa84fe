"""Where the fleet keeps things in Redis: every key and channel name, in one place.

gw:call:<CallSid>        hash: a call record (`gateway.fleet.records`)
gw:calls                 sorted set: CallSids by creation time (the fleet's call list)
gw:member:<instance>     hash: an instance's membership (`gateway.fleet.members`)
gw:members               sorted set: instance ids by start time
gw:stream:<CallSid>      string: the one live stream of a call ("<instance> <StreamSid>")
gw:token:<nonce>         string: a redeemed stream token, until it would have expired
gw:events                channel: call events of every instance
gw:inbox:<instance>      channel: commands for an instance, and answers to its commands
"""

from __future__ import annotations

PREFIX = "gw:"
CALLS = PREFIX + "calls"
MEMBERS = PREFIX + "members"
EVENTS = PREFIX + "events"


def call(call_sid: str) -> str:
    return f"{PREFIX}call:{call_sid}"


def member(instance: str) -> str:
    return f"{PREFIX}member:{instance}"


def stream(call_sid: str) -> str:
    return f"{PREFIX}stream:{call_sid}"


def token(nonce: str) -> str:
    return f"{PREFIX}token:{nonce}"


def handoff(call_sid: str) -> str:
    return f"{PREFIX}handoff:{call_sid}"


def inbox(instance: str) -> str:
    return f"{PREFIX}inbox:{instance}"
