"""The admin control WebSocket, `/admin/ws`: commands and live call events for operators.

Protocol (JSON text frames; documented with examples in the README):

- Authentication comes first: `Authorization: Bearer <GATEWAY_ADMIN_TOKEN>` on the
  upgrade (a wrong token gets HTTP 401), or, for clients that cannot set headers, a first
  message `{"type": "auth", "token": "..."}` within 5 s. Until then nothing flows; a
  failure closes with 4401.
- Requests carry an `id` and a `type`: `list_calls`, `get_call`, `originate`, `hangup`,
  `transfer`, `say`, `drain`, `subscribe`, `unsubscribe`, `pong`. Replies echo the id:
  `{"id", "type": "result", "data"}` or `{"id", "type": "error", "error": {code, message}}`.
  A malformed or unknown request gets an error reply and the connection stays open.
- `subscribe` takes `topics` (patterns such as `call.*`) and optional `call_sid` and
  `direction` filters; events arrive as `{"type": "event", "subscription", "topic",
  "call_sid", "direction", "ts", "data"}`.
- The server sends `{"type": "heartbeat"}` every `heartbeat_seconds`; a client that sends
  nothing (a `pong` will do) for `idle_timeout_seconds` is closed with 4408.
- Each client has a bounded drop-oldest outbox: a slow client loses its oldest events
  and is told `{"type": "lagged", "dropped": N}`; no call ever waits for it.
- A frame larger than `max_message_bytes` closes the connection with 1009.
"""

from __future__ import annotations

import fnmatch
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import structlog
import trio
from quart import websocket

from gateway.admin.operations import CallOperations, OperationError
from gateway.calls.event_bus import TOPICS, EventBus, Subscriber
from gateway.settings import Settings

log = structlog.get_logger("gateway.admin.control_ws")

CLOSE_UNAUTHORIZED = 4401
CLOSE_IDLE = 4408
CLOSE_TOO_BIG = 1009
AUTH_TIMEOUT_SECONDS = 5.0


def authorized(settings: Settings, header: str | None) -> bool:
    """Constant-time check of an `Authorization: Bearer` value against the admin token."""
    token = settings.admin_token.reveal()
    if not token or not header or not header.startswith("Bearer "):
        return False
    return secrets.compare_digest(header[len("Bearer ") :].encode(), token.encode())


class AdminSession:
    """One admin client over an accepted quart WebSocket."""

    def __init__(self, settings: Settings, operations: CallOperations, bus: EventBus) -> None:
        self._settings = settings
        self._operations = operations
        self._bus = bus
        self._subscriber = Subscriber(settings.admin_outbox_events)
        self._idle = trio.CancelScope()  # its deadline moves forward with every frame received
        self._reported_drops = 0
        self._commands: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
            "list_calls": lambda r: operations.list_calls(r.get("state"), r.get("direction")),
            "get_call": lambda r: operations.get_call(_field(r, "call_sid")),
            "originate": lambda r: operations.originate(_field(r, "to"), r.get("from")),
            "hangup": lambda r: operations.hang_up(_field(r, "call_sid")),
            "transfer": lambda r: operations.transfer(_field(r, "call_sid"), _field(r, "to")),
            "say": lambda r: operations.say(_field(r, "call_sid"), _field(r, "text")),
            "drain": lambda r: operations.start_drain(_optional(r, "instance")),
            "list_instances": lambda _r: operations.list_instances(),
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "pong": _nothing,
        }

    async def run(self, authenticated: bool) -> None:
        if not authenticated and not await self._authenticate():
            return
        self._bus.join(self._subscriber)
        log.info("admin.connected", clients=len(self._bus))
        try:
            await self._send({"type": "welcome", "instance": self._settings.instance_id, "topics": TOPICS,
                              "heartbeat_seconds": self._settings.admin_heartbeat_s,
                              "idle_timeout_seconds": self._settings.admin_idle_timeout_s})  # fmt: skip
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._deliver)
                nursery.start_soon(self._heartbeat)
                nursery.start_soon(self._watch_idle, nursery.cancel_scope)
                await self._serve_requests()
                nursery.cancel_scope.cancel()
        finally:
            self._bus.leave(self._subscriber)
            log.info(
                "admin.disconnected", clients=len(self._bus), dropped=self._subscriber.outbox.stats.dropped
            )

    async def _authenticate(self) -> bool:
        with trio.move_on_after(AUTH_TIMEOUT_SECONDS):
            message = await self._receive()
            request = _parse(message) if message is not None else None
            token = (
                request.get("token") if isinstance(request, dict) and request.get("type") == "auth" else None
            )
            if isinstance(token, str) and authorized(self._settings, "Bearer " + token):
                return True
        log.warning("admin.rejected", reason="no valid auth message")
        await websocket.close(CLOSE_UNAUTHORIZED, "unauthorized")
        return False

    async def _receive(self) -> str | None:
        """The next frame, or None if it was too big (the socket is then closed with 1009)."""
        message = await websocket.receive()
        self._idle.deadline = trio.current_time() + self._settings.admin_idle_timeout_s
        text = message if isinstance(message, str) else message.decode("utf-8", errors="replace")
        if len(text.encode()) > self._settings.admin_max_message_bytes:
            await websocket.close(CLOSE_TOO_BIG, "message too big")
            return None
        return text

    async def _serve_requests(self) -> None:
        while True:
            message = await self._receive()
            if message is None:
                return
            await self._answer(_parse(message))

    async def _answer(self, request: Any) -> None:
        if not isinstance(request, dict):
            await self._send({"type": "error", "error": {"code": "bad_request", "message": str(request)}})
            return
        reply: dict[str, Any] = {"id": request.get("id")}
        command = self._commands.get(str(request.get("type")))
        try:
            if command is None:
                raise OperationError("unknown_command", f"unknown request type {request.get('type')!r}")
            data = await command(request)
        except OperationError as exc:
            reply.update(type="error", error=exc.as_dict())
        else:
            if data is None:
                return
            reply.update(type="result", data=data)
        await self._send(reply)

    async def _subscribe(self, request: dict[str, Any]) -> dict[str, Any]:
        topics = request.get("topics")
        if not isinstance(topics, list) or not topics or not all(isinstance(t, str) for t in topics):
            raise OperationError("bad_request", "'topics' must be a non-empty list of topic patterns")
        unknown = [t for t in topics if not any(_fits(t, topic) for topic in TOPICS)]
        if unknown:
            raise OperationError("bad_request", f"no topic matches {unknown}; topics are {', '.join(TOPICS)}")
        subscription = self._bus.subscribe(
            self._subscriber, tuple(topics), _optional(request, "call_sid"), _optional(request, "direction")
        )
        return {"subscription": subscription.sid}

    async def _unsubscribe(self, request: dict[str, Any]) -> dict[str, Any]:
        sid = _field(request, "subscription")
        if self._subscriber.subscriptions.pop(sid, None) is None:
            raise OperationError("not_found", f"no subscription {sid}")
        return {"subscription": sid}

    async def _deliver(self) -> None:
        outbox = self._subscriber.outbox
        async for delivery in outbox:
            if outbox.stats.dropped > self._reported_drops:
                await self._send({"type": "lagged", "dropped": outbox.stats.dropped - self._reported_drops})
                self._reported_drops = outbox.stats.dropped
            event = delivery.event
            await self._send({
                "type": "event", "subscription": delivery.subscription, "topic": event.topic,
                "call_sid": event.call_sid, "direction": event.direction, "instance": event.instance,
                "ts": event.ts, "data": event.data,
            })  # fmt: skip

    async def _heartbeat(self) -> None:
        while True:
            await trio.sleep(self._settings.admin_heartbeat_s)
            await self._send({"type": "heartbeat", "ts": time.time()})

    async def _watch_idle(self, scope: trio.CancelScope) -> None:
        timeout = self._settings.admin_idle_timeout_s
        self._idle.deadline = trio.current_time() + timeout
        with self._idle:
            await trio.sleep_forever()
        log.info("admin.idle_closed", idle_seconds=timeout)
        await websocket.close(CLOSE_IDLE, "idle: answer heartbeats with pong")
        scope.cancel()

    async def _send(self, message: dict[str, Any]) -> None:
        await websocket.send(orjson.dumps(message).decode())


def _parse(message: str) -> Any:
    try:
        return orjson.loads(message)
    except orjson.JSONDecodeError:
        return "request is not JSON"


def _field(request: dict[str, Any], name: str) -> Any:
    if name not in request:
        raise OperationError("bad_request", f"missing field {name!r}")
    return request[name]


def _optional(request: dict[str, Any], name: str) -> str | None:
    value = request.get(name)
    if value is not None and not isinstance(value, str):
        raise OperationError("bad_request", f"{name!r} must be a string")
    return value


def _fits(pattern: str, topic: str) -> bool:
    return fnmatch.fnmatchcase(topic, pattern)


async def _nothing(_request: dict[str, Any]) -> None:
    return None
