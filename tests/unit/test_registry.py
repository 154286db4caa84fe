"""The in-memory call registry."""

import time

from gateway.calls.registry import CallRecord, CallState, InMemoryRegistry


def record(sid, state=CallState.LIVE, direction="inbound", ended_at=None):
    return CallRecord(sid, direction, state, "+1555", "+1666", "i1", time.time(), ended_at=ended_at)


async def test_states_move_and_timestamps_follow():
    """Going live stamps live_at; ending stamps ended_at."""
    registry = InMemoryRegistry()
    await registry.put(record("CA1", CallState.CONNECTING))
    live = await registry.update("CA1", state=CallState.LIVE)
    ended = await registry.update("CA1", state=CallState.ENDED, end_reason="twilio_stop")
    assert live.live_at is not None
    assert ended.ended_at is not None
    assert ended.end_reason == "twilio_stop"
    assert await registry.update("CA-unknown", state=CallState.LIVE) is None


async def test_list_filters_by_state_and_direction():
    """Listing narrows by state and direction."""
    registry = InMemoryRegistry()
    await registry.put(record("CA1"))
    await registry.put(record("CA2", direction="outbound", state=CallState.RINGING))
    assert [r.call_sid for r in await registry.list(state="live")] == ["CA1"]
    assert [r.call_sid for r in await registry.list(direction="outbound")] == ["CA2"]


async def test_ended_calls_are_forgotten_after_the_retention_time():
    """Old ended calls are purged; live ones never are."""
    registry = InMemoryRegistry(retention_seconds=60)
    await registry.put(record("CA-old", CallState.ENDED, ended_at=time.time() - 120))
    await registry.put(record("CA-live"))
    await registry.put(record("CA-new"))
    assert {r.call_sid for r in await registry.list()} == {"CA-live", "CA-new"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_call_whose_stream_never_comes_ends_instead_of_connecting_forever():
    """Answered, but no media stream within the limit: the record ends as no_stream, and
    later leaves the registry like any ended call; a call that went live is untouched."""
    clock = Clock()
    registry = InMemoryRegistry(retention_seconds=60, connecting_limit_s=120, clock=clock)
    await registry.put(record("CA-lost", CallState.CONNECTING))
    await registry.put(record("CA-live", CallState.CONNECTING))
    await registry.update("CA-live", state=CallState.LIVE)
    clock.now += 121
    await registry.put(record("CA-next", CallState.CONNECTING))
    lost = await registry.get("CA-lost")
    assert (lost.state, lost.end_reason) == (CallState.ENDED, "no_stream")
    assert (await registry.get("CA-live")).state is CallState.LIVE
    clock.now += 61
    await registry.put(record("CA-later", CallState.RINGING))
    assert await registry.get("CA-lost") is None


async def test_an_outbound_call_with_no_status_ends_after_the_ringing_limit():
    clock = Clock()
    registry = InMemoryRegistry(ringing_limit_s=600, clock=clock)
    await registry.put(record("CA-out", CallState.RINGING, direction="outbound"))
    clock.now += 601
    await registry.put(record("CA-other", CallState.RINGING))
    assert (await registry.get("CA-out")).end_reason == "no_status"


async def test_a_flood_of_calls_keeps_the_registry_bounded():
    """However many calls come and go, the ended ones beyond the cap are forgotten, oldest first."""
    clock = Clock()
    registry = InMemoryRegistry(max_ended=100, clock=clock)
    for call in range(1000):
        await registry.put(record(f"CA{call}", CallState.CONNECTING))
        await registry.update(f"CA{call}", state=CallState.ENDED)
        clock.now += 0.01
    assert len(registry) == 100
    assert await registry.get("CA999") is not None
    assert await registry.get("CA0") is None


async def test_a_call_that_leaves_ended_is_not_forgotten_as_ended_later():
    """A webhook for an ended call brings it back to connecting: the cap on ended records
    must not delete it, and its own wait limit still ends it cleanly (the registry keeps
    working for every other call)."""
    clock = Clock()
    registry = InMemoryRegistry(max_ended=2, connecting_limit_s=120, clock=clock)
    await registry.put(record("CA-back", CallState.CONNECTING))
    await registry.update("CA-back", state=CallState.ENDED)
    await registry.update("CA-back", state=CallState.CONNECTING)  # Twilio asked for it again
    for call in range(5):
        await registry.put(record(f"CA{call}", CallState.CONNECTING))
        await registry.update(f"CA{call}", state=CallState.ENDED)
    assert (await registry.get("CA-back")).state is CallState.CONNECTING
    clock.now += 121
    await registry.put(record("CA-next", CallState.RINGING))
    assert (await registry.get("CA-back")).end_reason == "no_stream"


async def test_a_hang_up_that_never_hears_back_ends_after_the_limit():
    clock = Clock()
    registry = InMemoryRegistry(ringing_limit_s=600, clock=clock)
    await registry.put(record("CA-end", CallState.ENDING, direction="outbound"))
    clock.now += 601
    await registry.put(record("CA-other", CallState.RINGING))
    assert (await registry.get("CA-end")).state is CallState.ENDED
