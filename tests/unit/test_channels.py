"""The drop-oldest channel: never blocks the producer, keeps order, counts every loss."""

import pytest
import trio
import trio.testing

from actors.channels import DropOldestChannel


class TestOverflow:
    def test_full_channel_discards_the_oldest_and_counts_it(self):
        """A send on a full channel evicts the oldest item, keeps FIFO order, and counts one drop."""
        channel = DropOldestChannel[int]("audio", capacity=3)
        for item in range(5):
            channel.send_nowait(item)
        assert [channel.receive_nowait() for _ in range(3)] == [2, 3, 4]
        assert channel.stats.dropped == 2
        assert channel.stats.sent == 5
        assert channel.stats.received == 3

    def test_depth_statistics_track_peak_and_mean(self):
        """Peak depth is the most ever queued; mean depth is the average seen by producers."""
        channel = DropOldestChannel[int]("audio", capacity=10)
        channel.send_nowait(1)
        channel.send_nowait(2)
        channel.receive_nowait()
        channel.send_nowait(3)
        assert channel.stats.peak_depth == 2
        assert channel.stats.mean_depth == pytest.approx((1 + 2 + 2) / 3)

    def test_capacity_must_be_positive(self):
        """A zero-capacity drop-oldest channel would drop everything, so it is refused."""
        with pytest.raises(ValueError, match="capacity"):
            DropOldestChannel[int]("audio", capacity=0)


class TestReceive:
    async def test_receive_waits_for_a_send(self, autojump_clock):
        """A consumer parked on an empty channel wakes up with the next item."""
        channel = DropOldestChannel[str]("audio", capacity=2)
        received = []

        async def consume():
            received.append(await channel.receive())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            await trio.sleep(1)
            assert received == []
            channel.send_nowait("frame")
        assert received == ["frame"]

    async def test_receive_is_a_checkpoint_even_when_items_are_queued(self):
        """Receiving from a non-empty channel still yields, so a busy consumer cannot starve others."""
        channel = DropOldestChannel[int]("audio", capacity=2)
        channel.send_nowait(1)
        with trio.testing.assert_checkpoints():
            await channel.receive()

    async def test_receive_honours_cancellation(self, autojump_clock):
        """A cancelled receive on an empty channel raises Cancelled and loses nothing."""
        channel = DropOldestChannel[int]("audio", capacity=2)
        with trio.move_on_after(1):
            await channel.receive()
        channel.send_nowait(7)
        assert channel.receive_nowait() == 7

    async def test_close_lets_the_consumer_drain_then_end(self):
        """After close, queued items are still delivered, then iteration ends."""
        channel = DropOldestChannel[int]("audio", capacity=4)
        channel.send_nowait(1)
        channel.send_nowait(2)
        channel.close()
        assert [item async for item in channel] == [1, 2]
        with pytest.raises(trio.EndOfChannel):
            await channel.receive()

    async def test_close_wakes_a_parked_consumer(self, autojump_clock):
        """Closing an empty channel ends a consumer that was waiting on it."""
        channel = DropOldestChannel[int]("audio", capacity=1)
        ended = trio.Event()

        async def consume():
            async for _ in channel:
                pass
            ended.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            await trio.sleep(1)
            channel.close()
        assert ended.is_set()

    def test_send_after_close_is_refused(self):
        """Sending on a closed channel raises ClosedResourceError instead of queueing silently."""
        channel = DropOldestChannel[int]("audio", capacity=1)
        channel.close()
        with pytest.raises(trio.ClosedResourceError):
            channel.send_nowait(1)

    def test_receive_nowait_on_empty_open_channel_would_block(self):
        """receive_nowait distinguishes 'nothing yet' from 'nothing ever'."""
        channel = DropOldestChannel[int]("audio", capacity=1)
        with pytest.raises(trio.WouldBlock):
            channel.receive_nowait()


class TestSlowConsumer:
    async def test_producer_never_blocks_and_consumer_sees_the_newest(self, autojump_clock):
        """A producer at 50 items/s facing a consumer at 10 items/s keeps pace; losses are counted."""
        channel = DropOldestChannel[int]("audio", capacity=5)
        seen = []

        async def produce():
            for item in range(100):
                channel.send_nowait(item)
                await trio.sleep(0.02)
            channel.close()

        async def consume():
            async for item in channel:
                seen.append(item)
                await trio.sleep(0.1)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(produce)
            nursery.start_soon(consume)
        assert seen == sorted(seen)
        assert seen[-1] == 99
        assert channel.stats.dropped == 100 - len(seen)
        assert channel.stats.peak_depth == 5


class TestHandOver:
    def test_an_item_goes_straight_to_a_consumer_that_can_take_it(self):
        """While nothing is queued, a consumer that can take an item at once (its socket is
        free) gets it in the producer's own step: nothing queued, counted as sent and received."""
        channel = DropOldestChannel[int]("audio", capacity=3)
        taken: list[int] = []
        channel.hand_over = lambda item: taken.append(item) is None
        channel.send_nowait(1)
        channel.send_nowait(2)
        assert taken == [1, 2]
        assert len(channel) == 0
        assert (channel.stats.sent, channel.stats.received) == (2, 2)

    def test_items_queue_when_the_consumer_cannot_take_them_and_stay_in_order(self):
        """A refused hand-over queues the item; once anything is queued, later items queue
        behind it even if the consumer could take them, so order never changes."""
        channel = DropOldestChannel[int]("audio", capacity=5)
        free = False
        taken: list[int] = []

        def hand_over(item: int) -> bool:
            if free:
                taken.append(item)
            return free

        channel.hand_over = hand_over
        channel.send_nowait(1)
        free = True
        channel.send_nowait(2)
        assert taken == []
        assert [channel.receive_nowait(), channel.receive_nowait()] == [1, 2]
        channel.send_nowait(3)
        assert taken == [3]
