"""The two writers of an AI session's socket: caller audio, and everything else.

Caller audio goes out as it arrives, from its drop-oldest channel (a stalled provider
costs old audio, counted, never a blocked reader). Every other client event (truncates,
text items, tool outputs, response.create) is queued by whichever task decided it and
sent here in order, so no task on the call's Twilio side ever waits for a provider that
stopped reading. A closed socket ends both quietly: the receive loop sees the same
close and ends the session.
"""

from __future__ import annotations

import contextlib

import trio

from actors import realtime
from actors.ai_state import AISessionStats, Session
from actors.channels import DropOldestChannel
from actors.latency import LatencyHistogram
from actors.message_socket import SocketClosed
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
    append = realtime.input_audio_append
    now = trio.current_time
    with contextlib.suppress(SocketClosed):
        async for received_at, audio in caller_audio:
            await session.socket.send(append(audio))
            stats.appends_sent += 1
            latency.record(now() - received_at)
