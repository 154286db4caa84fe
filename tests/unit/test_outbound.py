"""The simulator checks what the gateway sends as strictly as Twilio does."""

import pytest

from gateway.simulator.outbound import OutboundClear, OutboundMark, OutboundMedia, Violation, check_outbound

SID = "MZ1"


def test_well_formed_messages_are_accepted():
    """media, mark and clear with exactly their documented fields pass."""
    assert check_outbound(
        '{"event":"media","streamSid":"MZ1","media":{"payload":"AQI="}}', SID
    ) == OutboundMedia(b"\x01\x02")
    assert check_outbound('{"event":"mark","streamSid":"MZ1","mark":{"name":"x"}}', SID) == OutboundMark("x")
    assert check_outbound('{"event":"clear","streamSid":"MZ1"}', SID) == OutboundClear()


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (b"raw", 31950),
        ("nope", 31951),
        ('{"event":"speak","streamSid":"MZ1"}', 31951),
        ('{"event":"media","streamSid":"MZ1","media":{"payload":"AQI=","track":"outbound"}}', 31951),
        ('{"event":"media","streamSid":"MZ1","media":{"playload":"AQI="}}', 31951),
        ('{"event":"clear","streamSid":"MZ2"}', 31951),
        ('{"event":"mark","streamSid":"MZ1","mark":{"name":"x"},"extra":1}', 31951),
    ],
    ids=[
        "binary",
        "not-json",
        "unknown-event",
        "extra-field",
        "misspelt-payload",
        "wrong-stream",
        "extra-top",
    ],
)
def test_violations_carry_twilios_warning_code(message, code):
    """Each mistake Twilio would warn about is a violation with Twilio's code."""
    result = check_outbound(message, SID)
    assert isinstance(result, Violation)
    assert result.code == code
