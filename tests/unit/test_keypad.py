"""The Keypad actor: presses become entries on time, none is lost, digits stay private."""

import trio

from actors.keypad import Keypad
from actors.twilio_media import Dtmf


class Events:
    def __init__(self) -> None:
        self.published: list[tuple[str, dict]] = []

    def publish(self, topic, data) -> None:
        self.published.append((topic, dict(data)))


async def test_an_entry_still_being_delivered_when_the_deadline_passes_is_not_lost(autojump_clock):
    """`#` completes an entry while the AI session is busy; the key's inter-digit deadline
    passes while the entry waits to be taken: it must still arrive, once."""
    presses_tx, presses_rx = trio.open_memory_channel[Dtmf](8)
    entries_tx, entries_rx = trio.open_memory_channel[str](0)  # delivery waits for the AI session
    keypad = Keypad(presses_rx, entries_tx, inter_digit_ms=1000)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(keypad.run)
        await presses_tx.send(Dtmf(1, "1"))
        await trio.sleep(0.5)
        await presses_tx.send(Dtmf(2, "#"))
        await trio.sleep(5)  # the session takes its time; the deadline of "1" passes meanwhile
        with trio.fail_after(10):
            assert await entries_rx.receive() == "1#"
        nursery.cancel_scope.cancel()
    assert keypad.entries == 1


async def test_keys_after_the_gap_form_an_entry_while_the_session_is_busy(autojump_clock):
    """An entry that completes by its deadline waits for the AI session instead of vanishing."""
    presses_tx, presses_rx = trio.open_memory_channel[Dtmf](8)
    entries_tx, entries_rx = trio.open_memory_channel[str](0)
    keypad = Keypad(presses_rx, entries_tx, inter_digit_ms=1000)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(keypad.run)
        for key in "42":
            await presses_tx.send(Dtmf(0, key))
        await trio.sleep(5)  # nobody reads entries for a while
        assert await entries_rx.receive() == "42"
        nursery.cancel_scope.cancel()


async def test_the_event_bus_hears_how_many_keys_not_which(autojump_clock):
    """Keys may be a PIN: like the logs, the admin event carries their count only."""
    presses_tx, presses_rx = trio.open_memory_channel[Dtmf](8)
    entries_tx, entries_rx = trio.open_memory_channel[str](8)
    events = Events()
    keypad = Keypad(presses_rx, entries_tx, inter_digit_ms=1000, events=events)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(keypad.run)
        for key in "1234#":
            await presses_tx.send(Dtmf(0, key))
        assert await entries_rx.receive() == "1234#"
        nursery.cancel_scope.cancel()
    assert events.published == [("dtmf", {"digits": 5})]
