"""A call moves at a turn boundary: not while the caller's reply is still to come, at the
deadline when no boundary comes, and not at all when its conversation cannot be saved."""

from __future__ import annotations

import trio

from actors.ai_state import REPLY_EXPECTED_S, Session
from actors.call_move import move_at_turn_boundary
from actors.conversation import Conversation, Turn
from actors.messages import EndReason


class QuietAI:
    """The two questions a move asks an AI session, answered by a test's flag."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.conversation = Conversation()
        self.conversation.add_text("assistant", "Hello")

    def at_turn_boundary(self) -> bool:
        return self.quiet

    async def wait_changed(self, seconds: float) -> None:
        await trio.sleep(seconds)


class TestTheTurnBoundary:
    async def test_a_session_is_busy_from_speech_stopped_until_the_reply_starts(self, autojump_clock):
        """The gap between the provider's speech_stopped and its response.created is not a
        boundary; a reply that never comes frees it after REPLY_EXPECTED_S."""
        session = Session(socket=None, started=0.0)  # type: ignore[arg-type]
        session.caller_stopped(reply_coming=True)
        in_the_gap = session.busy()
        session.response_started("resp_1")
        answering = session.busy()
        session.active_response = None
        after_the_reply = session.busy()
        session.caller_stopped(reply_coming=True)
        await trio.sleep(REPLY_EXPECTED_S)
        no_reply_came = session.busy()
        assert (in_the_gap, answering, after_the_reply, no_reply_came) == (True, True, False, False)

    async def test_without_an_automatic_reply_speech_stopped_ends_the_turn(self):
        session = Session(socket=None, started=0.0)  # type: ignore[arg-type]
        session.caller_stopped(reply_coming=False)
        assert not session.busy()


class TestMoving:
    async def test_a_quiet_call_moves_at_once_with_its_conversation(self, autojump_clock):
        saved: list[list[Turn]] = []

        async def save(turns: list[Turn]) -> bool:
            saved.append(turns)
            return True

        end = await move_at_turn_boundary(QuietAI(quiet=True), save, deadline_s=20)  # type: ignore[arg-type]
        assert end is not None
        assert (end.reason, int(end.close_code)) == (EndReason.MOVED, 1000)
        assert [(t.role, t.text) for t in saved[0]] == [("assistant", "Hello")]
        assert trio.current_time() == 0

    async def test_a_call_that_never_reaches_a_boundary_moves_at_the_deadline(self, autojump_clock):
        async def save(turns: list[Turn]) -> bool:
            return True

        end = await move_at_turn_boundary(QuietAI(quiet=False), save, deadline_s=20)  # type: ignore[arg-type]
        assert end is not None
        assert "deadline" in end.detail
        assert 20 <= trio.current_time() < 20.2

    async def test_a_call_whose_conversation_cannot_be_saved_stays(self, autojump_clock):
        async def save(turns: list[Turn]) -> bool:
            return False

        assert await move_at_turn_boundary(QuietAI(quiet=True), save, deadline_s=20) is None  # type: ignore[arg-type]
