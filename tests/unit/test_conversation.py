"""The conversation record replayed into a new AI session."""

from actors.conversation import Conversation


def test_both_sides_replay_in_order_from_deltas_and_transcripts():
    """Caller transcripts and assistant transcript deltas come back as ordered turns."""
    conversation = Conversation()
    conversation.caller_turn("u1")
    conversation.assistant_delta("a1", "We open ")
    conversation.caller_text("u1", " What are your hours? ")
    conversation.assistant_delta("a1", "at nine.")
    assert [(t.role, t.text) for t in conversation.replay()] == [
        ("user", "What are your hours?"),
        ("assistant", "We open at nine."),
    ]


def test_an_interrupted_answer_keeps_only_what_was_heard():
    """Cut at 40% heard, an answer keeps 40% of its words and says it was cut."""
    conversation = Conversation()
    conversation.assistant_done("a1", "one two three four five six seven eight nine ten")
    conversation.assistant_cut("a1", 400, 1000)
    assert conversation.replay()[0].text == "one two three four..."


def test_turns_without_text_are_skipped_and_replay_is_bounded():
    """Silent turns are left out; only the most recent turns within the budget replay."""
    conversation = Conversation(max_replay_chars=25)
    conversation.caller_turn("u0")  # never transcribed
    for index in range(10):
        conversation.add_text("user", f"entry {index}")
    replay = conversation.replay()
    assert [t.text for t in replay] == ["entry 7", "entry 8", "entry 9"]
