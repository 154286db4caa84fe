"""Commands and events between the instances of a fleet, over Redis pub/sub.

Each instance listens on its inbox and on the fleet's event channel. `ask` sends a command
(an operator's hang-up of a call another instance carries, say) to the owner's inbox and
waits, bounded, for its answer on our own; the owner runs it with its `CommandHandler`,
each command in its own task. Call events published on this instance's bus are relayed to
the event channel through a bounded drop-oldest outbox (a call never waits for Redis:
events that do not fit, or that Redis refused, are counted in `events_dropped`), and the
events of the other instances are delivered to this instance's admin subscribers.

Messages are JSON: `{"kind": "command", "id", "from", "op", "args"}`, answered by
`{"kind": "answer", "id", "result"}` or `{"kind": "answer", "id", "error": {"code",
"message"}}`; events are `{"instance", "topic", "data", "call_sid", "direction", "ts"}`.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio
import coredis.exceptions
import orjson
import structlog
import trio
from coredis.retry import NoRetryPolicy

from actors.channels import DropOldestChannel
from gateway.calls.event_bus import Event
from gateway.fleet import keys
from gateway.fleet.link import Client, FleetUnavailable, RedisLink

log = structlog.get_logger("gateway.fleet")

CommandHandler = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
RESUBSCRIBE_SECONDS = 0.5
OUTBOX_EVENTS = 4096
BATCH_EVENTS = 64
COMMANDS_AT_ONCE = 32


class CommandRefused(Exception):
    """The owner answered a command with an error (its code and message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class _Pending:
    done: trio.Event = field(default_factory=trio.Event)
    answer: dict[str, Any] = field(default_factory=dict)


class FleetMessenger:
    def __init__(self, link: RedisLink, instance: str, deliver: Callable[[Event], None]) -> None:
        self._link = link
        self._instance = instance
        self._deliver = deliver
        self._pending: dict[str, _Pending] = {}
        self._outbox = DropOldestChannel[Event]("fleet_events", OUTBOX_EVENTS)
        self._commands = trio.CapacityLimiter(COMMANDS_AT_ONCE)
        self.handler: CommandHandler | None = None
        self.subscribed = trio.Event()  # set once the first subscription is up
        self.events_lost = 0  # refused by Redis (the outbox counts its own drops)

    @property
    def events_dropped(self) -> int:
        return self._outbox.stats.dropped + self.events_lost

    def relay(self, event: Event) -> None:
        """An event of this instance, for the fleet (never blocks)."""
        self._outbox.send_nowait(event)

    async def ask(self, instance: str, op: str, args: dict[str, Any]) -> dict[str, Any]:
        """Run `op` on `instance` and return its result (the caller bounds the wait);
        `CommandRefused` carries its error, `FleetUnavailable` says it could not be reached."""
        request_id = secrets.token_hex(8)
        request = {"kind": "command", "id": request_id, "from": self._instance, "op": op, "args": args}
        pending = self._pending[request_id] = _Pending()
        try:
            await self._send(instance, request, "sending a command")
            await pending.done.wait()
        finally:
            del self._pending[request_id]
        if "error" in pending.answer:
            error = pending.answer["error"]
            raise CommandRefused(str(error.get("code", "unavailable")), str(error.get("message", "")))
        return dict(pending.answer.get("result") or {})

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._publish_events)
            task_status.started()
            await self._listen(nursery)

    # ---- receiving ----------------------------------------------------------------------

    async def _listen(self, nursery: trio.Nursery) -> None:
        channels = [keys.EVENTS, keys.inbox(self._instance)]
        while True:
            try:
                async with self._link.client.pubsub(
                    channels=channels, ignore_subscribe_messages=True, retry_policy=NoRetryPolicy()
                ) as subscription:
                    self.subscribed.set()
                    async for message in subscription:
                        self._on_message(str(message["channel"]), message["data"], nursery)
            except* (coredis.exceptions.RedisError, OSError, anyio.ClosedResourceError):
                pass  # the link logs Redis going down; we subscribe again below
            except* Exception:  # a barrier: whatever else broke, calls never notice
                log.exception("fleet.task_failed", task="listen")
            await trio.sleep(RESUBSCRIBE_SECONDS)

    def _on_message(self, channel: str, data: Any, nursery: trio.Nursery) -> None:
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            log.warning("fleet.bad_message", channel=channel, detail="not JSON")
            return
        if not isinstance(message, dict):
            return
        if channel == keys.EVENTS:
            try:
                self._on_event(message)
            except (TypeError, ValueError):
                log.warning("fleet.bad_message", channel=channel, detail="not an event")
        elif message.get("kind") == "answer":
            pending = self._pending.get(str(message.get("id")))
            if pending is not None:
                pending.answer = message
                pending.done.set()
        elif message.get("kind") == "command":
            nursery.start_soon(self._answer, message)

    def _on_event(self, message: dict[str, Any]) -> None:
        instance = str(message.get("instance", ""))
        if instance == self._instance or not isinstance(message.get("data"), dict):
            return
        self._deliver(
            Event(
                str(message.get("topic", "")), message["data"], message.get("call_sid"),
                message.get("direction"), float(message.get("ts") or 0.0), instance,
            )
        )  # fmt: skip

    async def _answer(self, command: dict[str, Any]) -> None:
        answer: dict[str, Any] = {"kind": "answer", "id": command.get("id")}
        op, args = str(command.get("op")), command.get("args")
        async with self._commands:
            try:
                if self.handler is None or not isinstance(args, dict):
                    raise CommandRefused("bad_request", f"no command {op!r} here")
                answer["result"] = await self.handler(op, args)
            except* CommandRefused as refused:
                exc = _first(refused)
                answer["error"] = {"code": exc.code, "message": exc.message}
            except* Exception:  # a bug in one command (groups too): answered, logged, the fleet goes on
                log.exception("fleet.command_failed", op=op)
                answer["error"] = {"code": "unavailable", "message": f"instance {self._instance} failed {op}"}
        with contextlib.suppress(FleetUnavailable):  # the asker times out and says so
            await self._send(str(command.get("from")), answer, "answering a command")

    # ---- sending ------------------------------------------------------------------------

    async def _send(self, instance: str, message: dict[str, Any], what: str) -> None:
        payload = orjson.dumps(message, default=str).decode()
        receivers = await self._link.do(lambda client: client.publish(keys.inbox(instance), payload), what)
        if not receivers:
            raise FleetUnavailable(
                f"instance {instance} is not listening (stopped, or not connected to Redis)"
            )

    async def _publish_events(self) -> None:
        while True:
            batch = [await self._outbox.receive()]
            while len(batch) < BATCH_EVENTS and len(self._outbox):
                batch.append(self._outbox.receive_nowait())
            payloads = [payload for event in batch if (payload := self._encode(event)) is not None]
            try:
                await self._link.do(partial(self._publish, payloads=payloads), "publishing events")
            except* FleetUnavailable:
                self.events_lost += len(payloads)
                await trio.sleep(RESUBSCRIBE_SECONDS)
            except* Exception:  # a barrier: whatever else broke, calls never notice
                self.events_lost += len(payloads)
                log.exception("fleet.task_failed", task="publish_events")
                await trio.sleep(RESUBSCRIBE_SECONDS)

    def _encode(self, event: Event) -> str | None:
        try:
            return _event_json(event, self._instance)
        except TypeError:  # data orjson cannot write (a non-str key, a huge int): counted, dropped
            self.events_lost += 1
            return None

    async def _publish(self, client: Client, *, payloads: list[str]) -> None:
        async with client.pipeline(transaction=False) as pipe:
            for payload in payloads:
                pipe.publish(keys.EVENTS, payload)


def _first(group: BaseExceptionGroup[CommandRefused]) -> CommandRefused:
    leaf = group.exceptions[0]
    return leaf if isinstance(leaf, CommandRefused) else _first(leaf)


def _event_json(event: Event, instance: str) -> str:
    return orjson.dumps(
        {"instance": instance, "topic": event.topic, "data": event.data, "call_sid": event.call_sid,
         "direction": event.direction, "ts": event.ts},
        default=str,
    ).decode()  # fmt: skip
