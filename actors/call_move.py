"""Moving a call: at its next turn boundary, its conversation is saved for another instance
and the call's stream here ends as `moved` (close 1000), the phone call going on.

The boundary is the one a session recycle waits for: the caller silent, the assistant's
last words heard (its last mark echoed), nothing generated or owed, no tool action
running. A deadline forces the move mid-turn (the caller loses at most the words in
flight). When the conversation cannot be saved the call is not moved at all: it stays
here, to end as a drain ends it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
import trio

from actors.ai_session import AISession
from actors.conversation import Turn
from actors.errors import CloseCode
from actors.messages import CallEnd, EndReason

log = structlog.get_logger("actors.call_move")

SaveTurns = Callable[[list[Turn]], Awaitable[bool]]
LOOK_EVERY_S = 0.1  # caller speech ending does not signal the playout view: look again anyway


async def move_at_turn_boundary(ai: AISession, save: SaveTurns, deadline_s: float) -> CallEnd | None:
    """Wait for a turn boundary (at most `deadline_s`), save the conversation, and end the
    call as moved; None (the call goes on here) if it could not be saved."""
    with trio.move_on_after(deadline_s) as waiting:
        while not ai.at_turn_boundary():
            await ai.wait_changed(LOOK_EVERY_S)
    turns = ai.conversation.replay()
    if not await save(turns):
        log.warning("call.move_failed", reason="the conversation could not be saved; the call stays here")
        return None
    forced = waiting.cancelled_caught
    log.info("call.moving", turns=len(turns), forced=forced)
    detail = "moved to another instance" + (" at the deadline, mid-turn" if forced else "")
    return CallEnd(EndReason.MOVED, detail, CloseCode.NORMAL)
