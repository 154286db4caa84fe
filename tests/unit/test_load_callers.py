"""The load generator's callers behave like people, in the shares the plan asks for."""

from collections import Counter

from gateway.simulator.load import HANG_UPS, Caller, LoadPlan, callers


def plan(calls, hangups, interrupts, seed=1):
    shares = {"hangups": hangups, "interrupts": interrupts, "seed": seed}
    return LoadPlan("http://gw", "token", "AC" + "0" * 32, calls, 20, 5, **shares)


def test_shares_of_hang_ups_of_every_kind_and_of_interrupting_callers():
    kinds = Counter(callers(plan(100, 0.4, 0.2)))
    assert sum(kinds[kind] for kind in HANG_UPS) == 40
    assert all(kinds[kind] == 10 for kind in HANG_UPS)
    assert kinds[Caller.INTERRUPTS] == 20
    assert kinds[Caller.PATIENT] == 40


def test_the_mix_is_shuffled_the_same_way_for_the_same_seed():
    assert callers(plan(50, 0.5, 0.2, seed=3)) == callers(plan(50, 0.5, 0.2, seed=3))
    assert callers(plan(50, 0.5, 0.2, seed=3)) != callers(plan(50, 0.5, 0.2, seed=4))


def test_behind_a_public_url_the_generator_signs_it_and_connects_where_the_server_listens():
    """A server behind a TLS proxy names its public wss:// URL in the TwiML; Twilio signs
    that URL, and the generator opens the stream at the address the server listens on."""
    behind = LoadPlan(
        "http://127.0.0.1:8000", "t", "AC" + "0" * 32, 1, 20, 5, public_url="https://gw.example"
    )
    assert behind.signed_url == "https://gw.example"
    assert behind.reachable("wss://gw.example/twilio/media") == "ws://127.0.0.1:8000/twilio/media"
    assert behind.reachable("wss://elsewhere.example/twilio/media") == "wss://elsewhere.example/twilio/media"


def test_without_a_public_url_the_generator_signs_and_connects_where_the_server_listens():
    direct = plan(1, 0, 0)
    assert direct.signed_url == "http://gw"
    assert direct.reachable("ws://gw/twilio/media") == "ws://gw/twilio/media"
