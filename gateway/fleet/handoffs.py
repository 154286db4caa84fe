"""Handoffs of moving calls in Redis: `gw:handoff:<CallSid>`, JSON, for a minute at most
(Twilio asks for the next TwiML and opens the new stream within seconds)."""

from __future__ import annotations

import orjson

from gateway.calls.handoff import Handoff
from gateway.fleet import keys
from gateway.fleet.link import RedisLink

HANDOFF_TTL_MS = 60_000


class RedisHandoffs:
    def __init__(self, link: RedisLink) -> None:
        self._link = link

    async def save(self, handoff: Handoff) -> None:
        payload = orjson.dumps(handoff.as_dict()).decode()
        key = keys.handoff(handoff.call_sid)
        await self._link.do(lambda client: client.set(key, payload, px=HANDOFF_TTL_MS), "saving a handoff")

    async def waiting(self, call_sid: str) -> bool:
        key = keys.handoff(call_sid)
        return bool(await self._link.do(lambda client: client.exists([key]), "looking for a handoff"))

    async def take(self, call_sid: str) -> Handoff | None:
        key = keys.handoff(call_sid)
        raw = await self._link.do(lambda client: client.getdel(key), "taking a handoff")
        if raw is None:
            return None
        try:
            return Handoff.from_dict(orjson.loads(raw))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
