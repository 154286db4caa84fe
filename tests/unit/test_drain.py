"""Drain: started once, and its deadline counts from when it began."""

import time

from gateway.calls.drain import Drain


def test_a_drain_starts_once():
    drain = Drain()
    assert drain.start("operator", 3) is True
    assert drain.start("signal", 3, 300) is False
    assert drain.draining


def test_the_deadline_counts_from_when_the_drain_began_not_from_the_signal():
    """A preStop hook began draining 200 s ago: SIGTERM leaves only what remains of 300 s."""
    drain = Drain()
    drain.start("operator", 1)
    drain.started_at = time.time() - 200
    assert 99 < drain.remaining(300) <= 100
    drain.started_at = time.time() - 400
    assert drain.remaining(300) == 0


def test_without_a_drain_the_whole_deadline_remains():
    assert 299 < Drain().remaining(300) <= 300
