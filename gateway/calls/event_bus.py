"""The event bus: call events fanned out to admin subscribers, never blocking a call.

A publisher (a call's actors, the registry) calls `publish`, which is synchronous and
cheap: for each subscription whose topic pattern and filters match, the event is offered
to that client's outbox, a drop-oldest channel. A client that reads slowly or not at all
loses its oldest events (and is told how many); nobody else waits for it.

Topics: `call.started`, `call.state`, `call.ended`, `transcript`, `barge_in`, `dtmf`,
`ai.session` (an AI session opened: its number and connect time), `ai.reconnecting`,
`metrics`. Patterns use `*` as a wildcard (`call.*`, `*`).
"""

from __future__ import annotations

import fnmatch
import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from actors.channels import DropOldestChannel

TOPICS = (
    "call.started",
    "call.state",
    "call.ended",
    "transcript",
    "barge_in",
    "dtmf",
    "ai.session",
    "ai.reconnecting",
    "metrics",
)


@dataclass(frozen=True, slots=True)
class Event:
    topic: str
    data: Mapping[str, Any]
    call_sid: str | None = None
    direction: str | None = None
    ts: float = field(default_factory=time.time)
    instance: str = ""  # the instance whose call it is


@dataclass(frozen=True, slots=True)
class Subscription:
    sid: str
    topics: tuple[str, ...]
    call_sid: str | None = None
    direction: str | None = None

    def matches(self, event: Event) -> bool:
        if self.call_sid is not None and event.call_sid != self.call_sid:
            return False
        if self.direction is not None and event.direction not in (None, self.direction):
            return False
        return any(fnmatch.fnmatchcase(event.topic, pattern) for pattern in self.topics)


@dataclass(frozen=True, slots=True)
class Delivery:
    subscription: str
    event: Event


class Subscriber:
    """One admin client: its subscriptions and its bounded outbox."""

    def __init__(self, outbox_size: int) -> None:
        self.outbox = DropOldestChannel[Delivery]("admin_outbox", outbox_size)
        self.subscriptions: dict[str, Subscription] = {}

    def offer(self, event: Event) -> None:
        for subscription in self.subscriptions.values():
            if subscription.matches(event):
                self.outbox.send_nowait(Delivery(subscription.sid, event))


class EventBus:
    """`publish` takes this instance's events: to its subscribers, and to `relay` (in a fleet,
    the other instances); `deliver` takes another instance's, for this one's subscribers."""

    def __init__(self, instance: str = "") -> None:
        self._subscribers: set[Subscriber] = set()
        self._ids = itertools.count(1)
        self._instance = instance
        self.relay: Callable[[Event], None] | None = None
        self.published = 0

    def __len__(self) -> int:
        return len(self._subscribers)

    def join(self, subscriber: Subscriber) -> None:
        self._subscribers.add(subscriber)

    def leave(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)
        subscriber.outbox.close()

    def subscribe(
        self, subscriber: Subscriber, topics: tuple[str, ...], call_sid: str | None, direction: str | None
    ) -> Subscription:
        subscription = Subscription(f"s{next(self._ids)}", topics, call_sid, direction)
        subscriber.subscriptions[subscription.sid] = subscription
        return subscription

    def publish(
        self,
        topic: str,
        data: Mapping[str, Any],
        *,
        call_sid: str | None = None,
        direction: str | None = None,
    ) -> None:
        self.published += 1
        if not self._subscribers and self.relay is None:
            return
        event = Event(topic, data, call_sid, direction, instance=self._instance)
        if self.relay is not None:
            self.relay(event)
        self.deliver(event)

    def deliver(self, event: Event) -> None:
        for subscriber in self._subscribers:
            if not subscriber.outbox.closed:
                subscriber.offer(event)


EventObserver = Callable[[str, Mapping[str, Any], str], None]  # topic, data, direction


class CallEventSink:
    """`CallEvents` for one call: stamps its CallSid and direction, shows the event to the
    observer (metrics), hands it on to the bus."""

    def __init__(
        self, bus: EventBus, call_sid: str, direction: str, observer: EventObserver | None = None
    ) -> None:
        self._bus = bus
        self._call_sid = call_sid
        self._direction = direction
        self._observer = observer

    def publish(self, topic: str, data: Mapping[str, Any]) -> None:
        if self._observer is not None:
            self._observer(topic, data, self._direction)
        self._bus.publish(topic, data, call_sid=self._call_sid, direction=self._direction)
