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
