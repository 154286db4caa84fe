"""The two writers of an AI session's socket: caller audio, and everything else.

Caller audio goes out as it arrives, from its drop-oldest channel (a stalled provider
costs old audio, counted, never a blocked reader); while the provider's socket is free,
the reader's step sends each frame itself, never waiting. Every other client event (truncates,
text items, tool outputs, response.create) is queued by whichever task decided it and
sent here in order, so no task on the call's Twilio side ever waits for a provider that
stopped reading. A closed socket ends both quietly: the receive loop sees the same
close and ends the session.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import trio

from actors import realtime
from actors.ai_state import AISessionStats, Session
from actors.channels import DropOldestChannel
from actors.latency import LatencyHistogram
from actors.message_socket import SendsNowait, SocketClosed
from actors.messages import CallerFrame


async def send_control(session: Session, outbox: trio.MemoryReceiveChannel[str]) -> None:
    with contextlib.suppress(SocketClosed):
        async for message in outbox:
            await session.socket.send(message)


async def send_caller_audio(
    session: Session,
    caller_audio: DropOldestChannel[CallerFrame],
    stats: AISessionStats,
    latency: LatencyHistogram,
) -> None:
    """Every caller frame to the provider, in order. While the socket is free, the producer
    sends each frame itself, in its own step (`hand_over`); what queued while the socket
    was busy (or the session was not yet up) goes from here."""
    append = realtime.input_audio_append
    now = trio.current_time
    socket = session.socket
    with contextlib.suppress(SocketClosed):
        if isinstance(socket, SendsNowait):
            caller_audio.hand_over = _sender_at_once(session, socket, stats, latency)
        try:
            async for received_at, audio in caller_audio:
                await socket.send(append(audio))
                stats.appends_sent += 1
                latency.record(now() - received_at)
        finally:
            caller_audio.hand_over = None


def _sender_at_once(
    session: Session, socket: SendsNowait, stats: AISessionStats, latency: LatencyHistogram
) -> Callable[[CallerFrame], bool]:
    """The hand-over: a frame goes at once on a live session's free socket. Once the session
    has ended (its tasks not yet gone), frames queue for the next one instead."""
    append = realtime.input_audio_append
    now = trio.current_time

    def send_at_once(frame: CallerFrame) -> bool:
        if session.outcome is not None or not socket.send_nowait(append(frame[1])):
            return False
        stats.appends_sent += 1
        latency.record(now() - frame[0])
        return True

    return send_at_once
