"""Tool policy: what is offered to the model, and what each call decides."""

import orjson
import pytest

from actors.realtime import FunctionCall
from actors.tools import EndCall, ToolPolicy, Transfer, interrupted


def call(name, arguments="{}"):
    return FunctionCall("r1", "i1", "call_1", name, arguments)


def test_only_configured_tools_are_offered():
    """end_call by default; transfer_call only with a default destination."""
    assert [t["name"] for t in ToolPolicy().definitions()] == ["end_call"]
    with_transfer = ToolPolicy(transfer_to="+15550001111").definitions()
    assert [t["name"] for t in with_transfer] == ["end_call", "transfer_call"]
    assert ToolPolicy(end_call=False).definitions() == []


def test_end_call_is_accepted_with_its_reason():
    """end_call yields an ok output and an EndCall action."""
    decision = ToolPolicy().decide(call("end_call", '{"reason":"bye"}'))
    assert decision.action == EndCall("bye")
    assert orjson.loads(decision.output)["ok"] is True


@pytest.mark.parametrize(
    ("arguments", "action"),
    [("{}", Transfer("+15550001111", "")), ('{"destination":"+15550002222"}', Transfer("+15550002222", ""))],
)
def test_transfer_goes_to_the_default_or_an_allowed_number(arguments, action):
    """Without a destination the default line; a requested one only if allowed."""
    policy = ToolPolicy(transfer_to="+15550001111", transfer_allowed=frozenset({"+15550002222"}))
    assert policy.decide(call("transfer_call", arguments)).action == action


@pytest.mark.parametrize(
    ("name", "arguments", "error"),
    [
        ("transfer_call", '{"destination":"+15559999999"}', "not allowed"),
        ("transfer_call", '{"destination":"call mom"}', "not an E.164"),
        ("end_call", "[1]", "must be a JSON object"),
        ("end_call", "{oops", "not valid JSON"),
        ("launch", "{}", "unknown tool"),
    ],
)
def test_refusals_explain_themselves_and_act_on_nothing(name, arguments, error):
    """Bad calls get an error output the model can read, and no action."""
    decision = ToolPolicy(transfer_to="+15550001111").decide(call(name, arguments))
    assert decision.action is None
    assert error in orjson.loads(decision.output)["error"]


def test_transfer_is_unknown_when_not_offered():
    """A model calling transfer_call when it was not offered gets 'unknown tool'."""
    assert "unknown tool" in ToolPolicy().decide(call("transfer_call")).output


def test_calls_of_interrupted_responses_are_not_carried_out():
    """An interrupted response's calls are answered as not carried out."""
    decision = interrupted(call("end_call"))
    assert decision.action is None
    assert "not carried out" in decision.output
