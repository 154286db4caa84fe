"""The AI session's data: its settings and counters, one session's state, the playout view."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from actors.errors import CloseCode
from actors.message_socket import MessageSocket
from actors.messages import CallEnd
from actors.realtime import (
    AudioDelta,
    AudioDone,
    Dialect,
    FunctionCall,
    RealtimeError,
    ResponseDone,
    SessionConfig,
)
from actors.tools import ToolPolicy

REPLY_EXPECTED_S = 3.0


@dataclass(frozen=True)
class AISettings:
    config: SessionConfig
    dialect: Dialect = Dialect.GA
    greet_first: bool = True
    tools: ToolPolicy = field(default_factory=ToolPolicy)
    dtmf_to_ai: bool = True
    dtmf_triggers_response: bool = True
    reconnect_attempts: int = 4
    reconnect_initial_s: float = 0.25
    reconnect_max_s: float = 4.0
    recycle_after_s: float = 55 * 60.0
    healthy_after_s: float = 30.0  # a session that lasted this long resets the failure count
    drain_timeout_s: float = 20.0  # longest wait for the caller to hear the last words
    ping_interval_s: float = 10.0  # a provider quiet this long gets a WebSocket ping
    silence_timeout_s: float = 30.0  # ...and is replaced when nothing, not even a pong, came this long
    apology: bytes = b""  # played when the AI cannot be reached, in the AI's output format

    def backoff_s(self, failures: int) -> float:
        """0 for the first retry (most drops are transient), then initial, doubling up to max."""
        if failures <= 1:
            return 0.0
        return min(self.reconnect_max_s, self.reconnect_initial_s * 2.0 ** (failures - 2))


@dataclass(slots=True)
class AISessionStats:
    sessions: int = 0
    reconnects: int = 0
    appends_sent: int = 0
    deltas_received: int = 0
    late_deltas_discarded: int = 0
    barge_ins: int = 0
    truncations: int = 0
    truncate_errors: int = 0
    responses: int = 0
    errors: int = 0
    tool_calls: int = 0
    usage: dict[str, int] = field(default_factory=dict)

    def add_usage(self, usage: dict[str, Any]) -> None:
        for key in ("input_tokens", "output_tokens", "total_tokens"):
            value = usage.get(key)
            if isinstance(value, int):
                self.usage[key] = self.usage.get(key, 0) + value


class PlayoutView:
    """What the downlink writer has reported: is the assistant audible, which items were heard.

    `changed` is replaced on every update, so a task can wait for "something moved" and
    look again.
    """

    def __init__(self) -> None:
        self.playing = False
        self.heard: set[str] = set()
        self.changed = trio.Event()

    def signal(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    async def changed_or_after(self, seconds: float) -> None:
        """Until something moves, or `seconds` pass (for what changes without a signal: a
        reply that never came)."""
        with trio.move_on_after(seconds):
            await self.changed.wait()

    async def wait_heard(self, items: set[str], is_current: Callable[[], bool] | None = None) -> bool:
        """Wait until every item was heard to its end; False if `is_current()` turns false."""
        while not items <= self.heard:
            if is_current is not None and not is_current():
                return False
            await self.changed.wait()
        return True


@dataclass(frozen=True, slots=True)
class Reconnect:
    """The session is over but the call is not: open another.

    `healthy`: the session had run long enough to reset the failure count; `immediate`:
    no backoff (a planned recycle, an announced expiry); `final`: retrying cannot help
    (a rejected key, a refused configuration); `configured`: the provider accepted the
    session before it ended.
    """

    reason: str
    healthy: bool = False
    immediate: bool = False
    final: bool = False
    configured: bool = False

    @classmethod
    def after_error(cls, error: RealtimeError) -> Reconnect | None:
        """How a provider error ends the session, if it does: an announced expiry is replaced
        at once; a fatal error is final; any other error leaves the session running."""
        if error.code == "session_expired":
            return cls("session expired", healthy=True, immediate=True)
        if error.is_fatal:
            return cls(f"fatal error: {error.code or error.message}", final=True)
        return None


@dataclass(slots=True)
class Session:
    socket: MessageSocket
    started: float
    scope: trio.CancelScope | None = None
    outcome: Reconnect | CallEnd | None = None
    close_code: CloseCode = CloseCode.NORMAL
    configured: bool = False
    active_response: str | None = None
    caller_speaking: bool = False
    reply_expected_until: float = -math.inf  # the provider's VAD ended a turn: its reply is coming
    pending_create: bool = False  # a response.create to send once the active response is done
    interrupted: set[str] = field(default_factory=set)  # responses cut short by a barge-in
    received_ms: dict[str, float] = field(default_factory=dict)  # assistant item -> audio received
    open_items: set[str] = field(default_factory=set)  # items whose audio is still arriving
    response_items: dict[str, set[str]] = field(default_factory=dict)  # audio items per response
    calls: dict[str, list[FunctionCall]] = field(default_factory=dict)
    # Client events other than audio, sent in order by the session's sender; unbounded, as
    # it carries a handful of events per turn and a provider that stops reading is caught
    # by the liveness watchdog. Open from the session's first moment, closed at its end.
    outbox: trio.MemorySendChannel[str] = field(init=False)
    control: trio.MemoryReceiveChannel[str] = field(init=False)

    def __post_init__(self) -> None:
        self.outbox, self.control = trio.open_memory_channel[str](math.inf)

    def send_later(self, message: str) -> bool:
        """Queue a client event for the session's sender; False once the session has ended
        (what was said is in the conversation, which the next session is given)."""
        try:
            self.outbox.send_nowait(message)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True

    def audio_arrived(self, delta: AudioDelta, ms: float) -> bool:
        """Book a delta of `ms`; False when it belongs to a response cut by a barge-in."""
        if delta.response_id in self.interrupted:
            return False
        item = delta.item_id
        self.received_ms[item] = self.received_ms.get(item, 0.0) + ms
        self.open_items.add(item)
        self.response_items.setdefault(delta.response_id, set()).add(item)
        return True

    def audio_done(self, done: AudioDone) -> bool:
        """An item's audio is complete; False when its response was cut by a barge-in."""
        if done.response_id in self.interrupted:
            return False
        self.open_items.discard(done.item_id)
        return True

    def cut(self) -> bool:
        """A barge-in: what is still arriving belongs to the cut response; True if one was active."""
        self.open_items.clear()
        if self.active_response is None:
            return False
        self.interrupted.add(self.active_response)
        return True

    def response_over(self, done: ResponseDone) -> tuple[bool, list[FunctionCall], set[str]]:
        """(whether it was interrupted, its function calls, its audio items) of a finished response."""
        self.active_response = None
        interrupted = done.response_id in self.interrupted or done.status == "cancelled"
        self.interrupted.discard(done.response_id)
        return (
            interrupted,
            self.calls.pop(done.response_id, []),
            self.response_items.pop(done.response_id, set()),
        )

    def take_pending_create(self) -> bool:
        """True once a `response.create` waiting for the active response to end may go."""
        if self.pending_create and self.active_response is None:
            self.pending_create = False
            return True
        return False

    def caller_stopped(self, *, reply_coming: bool) -> None:
        """The provider's VAD ended the caller's turn; with `reply_coming` it answers by
        itself, and until its response starts the turn is not over: a move or a recycle in
        that gap would lose the reply (found by ops/bench/moves.py)."""
        self.caller_speaking = False
        if reply_coming:
            self.reply_expected_until = trio.current_time() + REPLY_EXPECTED_S

    def response_started(self, response_id: str) -> None:
        self.active_response = response_id
        self.reply_expected_until = -math.inf

    def busy(self) -> bool:
        """A response is being generated or owed, or the caller is speaking (or just stopped,
        and the provider's reply has not begun yet; a provider that decides not to answer,
        noise say, holds the boundary `REPLY_EXPECTED_S` at most)."""
        return (
            self.active_response is not None
            or self.caller_speaking
            or self.pending_create
            or trio.current_time() < self.reply_expected_until
        )

    def end(self, outcome: Reconnect | CallEnd) -> None:
        """End this session (the first outcome wins) by cancelling its tasks."""
        if self.outcome is None:
            self.outcome = outcome
        self.outbox.close()
        if self.scope is not None:
            self.scope.cancel()
