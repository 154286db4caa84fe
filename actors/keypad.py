"""Keypad: the actor that turns DTMF key presses into keypad entries for the AI.

Callers type menu choices, PINs and account numbers one key at a time; sending each key
as its own turn would make the model answer after every digit. Keys are collected until
`inter_digit_ms` pass without a press, or `#` is pressed, then sent on as one entry.
"""

from __future__ import annotations

import math

import structlog
import trio

from actors.dtmf import DtmfCollector
from actors.events import CallEvents, NoEvents
from actors.twilio_media import Dtmf

log = structlog.get_logger("actors.keypad")


class Keypad:
    def __init__(
        self,
        presses: trio.MemoryReceiveChannel[Dtmf],
        entries: trio.MemorySendChannel[str],
        inter_digit_ms: float = 1000.0,
        *,
        events: CallEvents | None = None,
    ) -> None:
        self._presses = presses
        self._entries = entries
        self._events = events or NoEvents()
        self._collector = DtmfCollector(inter_digit_ms)
        self.entries = 0

    async def run(self) -> None:
        collector = self._collector
        while True:
            deadline = collector.deadline if collector.deadline is not None else math.inf
            press = None
            with trio.move_on_at(deadline):
                try:
                    press = await self._presses.receive()
                except trio.EndOfChannel:
                    return
            # Delivered outside the deadline's scope: a deadline passing while the AI session
            # is busy must not cancel an entry that is already complete.
            now = trio.current_time()
            await self._emit(collector.press(press.digit, now) if press else collector.expire(now))

    async def _emit(self, keys: str | None) -> None:
        if keys:
            self.entries += 1
            log.info("call.dtmf", digits=len(keys))  # digits may be a PIN: never logged or published
            self._events.publish("dtmf", {"digits": len(keys)})
            await self._entries.send(keys)
