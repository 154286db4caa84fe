"""The caller-audio sender: frames go out in the reader's own step on a live session's free
socket, queue otherwise, and never go to a session that has ended."""

from __future__ import annotations

import trio
import trio.testing

from actors import realtime
from actors.ai_senders import send_caller_audio
from actors.ai_state import AISessionStats, Reconnect, Session
from actors.channels import DropOldestChannel
from actors.latency import LatencyHistogram
from actors.messages import CallerFrame


class FreeSocket:
    """A provider socket with room: send_nowait takes every message at once."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.free = True

    def send_nowait(self, message: str) -> bool:
        if self.free:
            self.sent.append(message)
        return self.free

    async def send(self, message: str) -> None:
        await trio.lowlevel.checkpoint()
        self.sent.append(message)

    async def receive(self) -> str:
        await trio.sleep_forever()
        raise AssertionError

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await trio.lowlevel.checkpoint()


async def test_frames_go_in_the_readers_step_while_the_socket_is_free_and_queue_otherwise():
    socket = FreeSocket()
    session = Session(socket, trio.current_time())
    channel = DropOldestChannel[CallerFrame]("caller_audio", 10)
    stats = AISessionStats()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(send_caller_audio, session, channel, stats, LatencyHistogram())
        await trio.testing.wait_all_tasks_blocked()
        channel.send_nowait((trio.current_time(), b"\x01" * 160))
        assert socket.sent == [realtime.input_audio_append(b"\x01" * 160)]  # no await in between
        socket.free = False
        channel.send_nowait((trio.current_time(), b"\x02" * 160))
        assert len(socket.sent) == 1  # queued: the sender task sends it
        await trio.testing.wait_all_tasks_blocked()
        assert socket.sent[-1] == realtime.input_audio_append(b"\x02" * 160)
        assert stats.appends_sent == 2

        socket.free = True
        session.end(Reconnect("recycled", healthy=True, immediate=True))
        channel.send_nowait((trio.current_time(), b"\x03" * 160))
        assert len(socket.sent) == 2  # an ended session takes nothing: it waits for the next
        nursery.cancel_scope.cancel()
    assert channel.hand_over is None  # the sender is gone: frames queue for the next session
