"""The drop-oldest bounded channel that carries audio between actors.

Trio has no drop-oldest channel (trio #987, #1744), and audio needs one: when a consumer
falls behind, stale audio is worse than lost audio, and the producer (a socket reader)
must never block, or it would stop answering the peer. So `send_nowait` always succeeds:
when the channel is full it discards the oldest item and counts it. Nothing is lost
silently: `stats.dropped` counts every discarded item.

Control events (start, stop, marks, DTMF, barge-in) never go through this channel: they
use small ordinary trio memory channels, which block rather than drop.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import trio

T = TypeVar("T")


@dataclass(slots=True)
class ChannelStats:
    """Counters for one channel; `depth_sum / sent` is the mean depth seen by producers."""

    sent: int = 0
    received: int = 0
    dropped: int = 0
    peak_depth: int = 0
    depth_sum: int = 0

    @property
    def mean_depth(self) -> float:
        return self.depth_sum / self.sent if self.sent else 0.0


class DropOldestChannel(Generic[T]):
    """A bounded FIFO for one consumer whose producer never blocks.

    `send_nowait` appends; on a full channel it first discards the oldest item. There is
    no checkpoint between the discard and the append, so other tasks never see a
    half-done send. `receive` waits for an item; after `close()` it hands out what is
    queued, then raises `trio.EndOfChannel`.
    """

    hand_over: Callable[[T], bool] | None
    """The consumer's way to take an item in the producer's own step, when it can do so
    at once (its socket is free): set by the consumer for as long as it could (a live
    session), used only while nothing is queued, it spares each item a queue and a task
    switch. False means "queue it"."""

    def __init__(self, name: str, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.name = name
        self.capacity = capacity
        self.stats = ChannelStats()
        self._items: deque[T] = deque()
        self._waiting = trio.lowlevel.ParkingLot()
        self._closed = False
        self.hand_over = None

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    def send_nowait(self, item: T) -> None:
        """Queue `item`, discarding the oldest queued item if the channel is full (or hand it
        straight to the consumer, when nothing is queued and it can take it at once)."""
        if self._closed:
            raise trio.ClosedResourceError(f"channel {self.name} is closed")
        items = self._items
        stats = self.stats
        if not items and self.hand_over is not None and self.hand_over(item):
            stats.sent += 1
            stats.received += 1
            return
        if len(items) >= self.capacity:
            items.popleft()
            stats.dropped += 1
        items.append(item)
        stats.sent += 1
        depth = len(items)
        stats.depth_sum += depth
        stats.peak_depth = max(stats.peak_depth, depth)
        if self._waiting:
            self._waiting.unpark()

    def receive_nowait(self) -> T:
        """Return the oldest item, or raise `trio.WouldBlock` / `trio.EndOfChannel`."""
        if self._items:
            self.stats.received += 1
            return self._items.popleft()
        if self._closed:
            raise trio.EndOfChannel
        raise trio.WouldBlock

    async def receive(self) -> T:
        """Wait for the oldest item; a checkpoint whether or not one is queued."""
        await trio.lowlevel.checkpoint_if_cancelled()
        scheduled = False
        while True:
            if self._items:
                if not scheduled:
                    # Always yield once, like trio's own channels, so a consumer that
                    # never finds its inbox empty cannot starve other tasks.
                    await trio.lowlevel.cancel_shielded_checkpoint()
                    scheduled = True
                    continue
                return self.receive_nowait()
            if self._closed:
                raise trio.EndOfChannel
            await self._waiting.park()
            scheduled = True

    def close(self) -> None:
        """No more sends; the consumer drains what is queued, then gets `EndOfChannel`."""
        self._closed = True
        self._waiting.unpark_all()

    def __aiter__(self) -> DropOldestChannel[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None
