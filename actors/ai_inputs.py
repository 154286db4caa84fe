"""AIInputs: everything but caller audio that reaches a call's AI session.

Four small inboxes, each followed by its own task in the AI session's nursery, each
handed to one callback: the writer's playout reports (what the caller heard: barge-in
positions, items heard to their end, playing or idle; kept in the `PlayoutView`), keypad
entries, an operator's "say this", and the gateway's own VAD seeing the caller start
to speak. Every inbox is a lossless control channel; the callbacks belong to the AI
session, which owns the provider socket.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import trio

from actors.ai_state import PlayoutView
from actors.messages import Heard, ItemHeard, PlayoutBusy, PlayoutIdle, PlayoutReport

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class InputHandlers:
    heard: Callable[[Heard], Awaitable[None]]  # a barge-in cut these items at these positions
    keys: Callable[[str], Awaitable[None]]  # a keypad entry
    operator: Callable[[str], Awaitable[None]]  # an operator asks the AI to say something
    caller_speech: Callable[[float], Awaitable[None]]  # the local VAD heard speech start at


class AIInputs:
    def __init__(
        self,
        view: PlayoutView,
        *,
        playout: trio.MemoryReceiveChannel[PlayoutReport],
        keypad: trio.MemoryReceiveChannel[str],
        operator: trio.MemoryReceiveChannel[str] | None = None,
        caller_speech: trio.MemoryReceiveChannel[float] | None = None,
    ) -> None:
        self._view = view
        self._playout = playout
        self._keypad = keypad
        self._operator = operator
        self._caller_speech = caller_speech

    def start(self, nursery: trio.Nursery, handlers: InputHandlers) -> None:
        """Follow every inbox in `nursery` until it is cancelled or the inboxes close."""
        nursery.start_soon(self._follow_playout, handlers.heard)
        nursery.start_soon(_follow, self._keypad, handlers.keys)
        if self._operator is not None:
            nursery.start_soon(_follow, self._operator, handlers.operator)
        if self._caller_speech is not None:
            nursery.start_soon(_follow, self._caller_speech, handlers.caller_speech)

    async def _follow_playout(self, heard: Callable[[Heard], Awaitable[None]]) -> None:
        view = self._view
        async for report in self._playout:
            if isinstance(report, Heard):
                await heard(report)
            elif isinstance(report, ItemHeard):
                view.heard.add(report.item_id)
            elif isinstance(report, PlayoutIdle):
                view.playing = False
            elif isinstance(report, PlayoutBusy):
                view.playing = True
            view.signal()


async def _follow(inbox: trio.MemoryReceiveChannel[T], handle: Callable[[T], Awaitable[None]]) -> None:
    async for item in inbox:
        await handle(item)
