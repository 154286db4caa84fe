"""This process as an instance of a fleet: the Redis link, and what it keeps up to date.

Built when GATEWAY_REDIS_URL is set. `run` holds the link open, listens for commands and
events, and beats: every heartbeat it announces the instance (state, live calls), keeps
its call records and stream locks alive, and ends its records that waited too long. Each
of those expires five heartbeats after the last one that reached Redis. A heartbeat that
cannot reach Redis is skipped; nothing of a call waits for it, and the next beat that gets
through rewrites what expired meanwhile.
"""

from __future__ import annotations

import contextlib

import structlog
import trio

from gateway.calls.drain import Drain
from gateway.calls.event_bus import EventBus
from gateway.calls.live import LiveCalls
from gateway.fleet.handoffs import RedisHandoffs
from gateway.fleet.link import FleetUnavailable, RedisLink
from gateway.fleet.members import Membership
from gateway.fleet.messaging import FleetMessenger
from gateway.fleet.registry import RedisRegistry
from gateway.fleet.streams import FleetStreamGuard
from gateway.settings import Settings

log = structlog.get_logger("gateway.fleet")

HEARTBEATS_TO_EXPIRE = 5
LEAVE_SECONDS = 1.0


class Fleet:
    def __init__(self, settings: Settings, live: LiveCalls, bus: EventBus, drain: Drain) -> None:
        instance = settings.instance_id
        self.instance = instance
        self.heartbeat_s = settings.fleet_heartbeat_s
        ttl = HEARTBEATS_TO_EXPIRE * self.heartbeat_s
        self.link = RedisLink(settings.redis_url.reveal())
        self.registry = RedisRegistry(
            self.link, instance, retention_seconds=settings.registry_retention_s, active_ttl_seconds=ttl
        )
        self.members = Membership(self.link, instance, settings.public_url, ttl)
        self.streams = FleetStreamGuard(self.link, instance, ttl)
        self.messenger = FleetMessenger(self.link, instance, bus.deliver)
        self.handoffs = RedisHandoffs(self.link)
        bus.relay = self.messenger.relay
        self._live = live
        self._drain = drain

    async def run(self, *, task_status: trio.TaskStatus[Fleet] = trio.TASK_STATUS_IGNORED) -> None:
        async with self.link.open(), trio.open_nursery() as nursery:
            await nursery.start(self.messenger.run)
            await self.beat()
            nursery.start_soon(self._beat_forever)
            task_status.started(self)

    async def beat(self) -> None:
        state = "draining" if self._drain.draining else "serving"
        try:
            await self.members.beat(state, len(self._live))
            await self.registry.refresh()
            await self.streams.refresh((call.start.call_sid, call.start.stream_sid) for call in self._live)
        except FleetUnavailable:
            pass  # logged by the link when Redis went away; the next beat tries again

    async def others_serving(self) -> bool:
        """Whether another instance takes calls now (a move has somewhere to go)."""
        try:
            members = await self.members.list()
        except FleetUnavailable:
            return False
        return any(m.instance != self.instance and m.state == "serving" for m in members)

    async def leave(self) -> None:
        """Leave the membership list now rather than when it expires (at a clean stop)."""
        with trio.move_on_after(LEAVE_SECONDS), contextlib.suppress(FleetUnavailable):
            await self.members.leave()

    async def _beat_forever(self) -> None:
        while True:
            await trio.sleep(self.heartbeat_s)
            try:
                await self.beat()
            except* Exception:  # a barrier: whatever else broke, calls never notice
                log.exception("fleet.task_failed", task="heartbeat")
