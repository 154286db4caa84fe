"""DTMF key presses grouped into keypad entries."""

from actors.dtmf import DtmfCollector, describe_keys


def test_keys_pressed_together_form_one_entry_after_the_gap():
    """Keys within the inter-digit gap accumulate; the entry completes when the gap passes."""
    keys = DtmfCollector(inter_digit_ms=1000)
    assert keys.press("1", 0.0) is None
    assert keys.press("2", 0.5) is None
    assert keys.expire(1.4) is None
    assert keys.expire(1.5) == "12"
    assert keys.deadline is None


def test_hash_completes_an_entry_at_once():
    """# ends the entry without waiting."""
    keys = DtmfCollector(inter_digit_ms=1000)
    keys.press("4", 0.0)
    assert keys.press("#", 0.1) == "4#"


def test_entries_are_described_for_the_model():
    """The AI reads a plain sentence naming each key."""
    assert describe_keys("12#") == "The caller pressed 1, 2, # on the phone keypad."
