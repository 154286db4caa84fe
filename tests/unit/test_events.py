"""The event bus: topic patterns, filters, and publishers that never block."""

import pytest

from gateway.calls.event_bus import Event, EventBus, Subscriber, Subscription


def test_topic_patterns_and_filters():
    """call.* matches call topics only; a CallSid filter passes that call's events and call-less ones."""
    subscription = Subscription("s1", ("call.*",), call_sid="CA1")
    assert subscription.matches(Event("call.started", {}, "CA1", "inbound"))
    assert not subscription.matches(Event("transcript", {}, "CA1", "inbound"))
    assert not subscription.matches(Event("call.started", {}, "CA2", "inbound"))
    inbound = Subscription("s2", ("*",), direction="inbound")
    assert not inbound.matches(Event("dtmf", {}, "CA3", "outbound"))
    assert inbound.matches(Event("metrics", {}))


def test_publishing_to_a_full_outbox_drops_its_oldest_and_never_blocks():
    """A subscriber that reads nothing loses the oldest events; publish returns at once regardless."""
    bus = EventBus()
    subscriber = Subscriber(outbox_size=3)
    bus.join(subscriber)
    bus.subscribe(subscriber, ("*",), None, None)
    for index in range(10):
        bus.publish("metrics", {"index": index})
    assert [subscriber.outbox.receive_nowait().event.data["index"] for _ in range(3)] == [7, 8, 9]
    assert subscriber.outbox.stats.dropped == 7


def test_one_event_per_matching_subscription():
    """Two subscriptions of one client that both match get the event once each, tagged."""
    bus = EventBus()
    subscriber = Subscriber(outbox_size=10)
    bus.join(subscriber)
    first = bus.subscribe(subscriber, ("call.*",), None, None)
    second = bus.subscribe(subscriber, ("*",), None, None)
    bus.publish("call.ended", {})
    tags = {subscriber.outbox.receive_nowait().subscription for _ in range(2)}
    assert tags == {first.sid, second.sid}


def test_leaving_closes_the_outbox():
    """A client that leaves stops receiving and its writer ends."""
    bus = EventBus()
    subscriber = Subscriber(outbox_size=2)
    bus.join(subscriber)
    bus.leave(subscriber)
    bus.publish("metrics", {})
    assert subscriber.outbox.closed
    assert len(bus) == 0


@pytest.mark.parametrize(
    "topic", ["call.started", "call.state", "call.ended", "transcript", "barge_in", "dtmf"]
)
def test_every_call_topic_is_reachable_by_star(topic):
    """`*` subscribes to everything."""
    assert Subscription("s", ("*",)).matches(Event(topic, {}))
