"""Every listener and parser takes arbitrary bytes: a refusal, never a crash (a bounded run;
`make fuzz` runs the same targets a million times under atheris)."""

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz_targets import TARGETS

UPGRADE = (
    b"\x10GET /twilio/media HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)
# Inputs that start where the interesting parsing starts, besides plain noise.
SEEDS = {
    "websocket_frames": st.binary(max_size=600).map(lambda tail: b"\x05\x81\x85\x00\x00\x00\x00hello" + tail),
    "media_upgrade": st.binary(max_size=400).map(lambda tail: UPGRADE + tail),
    "http_request": st.binary(max_size=400).map(lambda tail: b"\xc1\x00\nContent-Length: 5\n\n" + tail),
    "admin_request": st.sampled_from(
        [
            b'{"type": "say", "call_sid": "CA' + b"c" * 32 + b'", "text": "x"}',
            b'{"id": 1, "type": "subscribe", "topics": [1]}',
            b"[]",
        ]
    ),
}


@pytest.fixture(autouse=True)
def quiet_logs():
    def drop(_logger, _method, _event):
        raise structlog.DropEvent

    structlog.configure(processors=[drop])
    yield
    structlog.reset_defaults()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_arbitrary_input_is_refused_not_a_crash(name):
    target = TARGETS[name]
    inputs = st.binary(max_size=1024) | SEEDS.get(name, st.nothing())

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
    @given(data=inputs)
    def run(data: bytes) -> None:
        target(data)

    run()


# Inputs the fuzzers found to crash the gateway once; kept so they never do again.
FOUND = [
    ("http_request", bytes.fromhex("f773ff0a0af3")),  # admin REST body not UTF-8: a 500
]


@pytest.mark.parametrize(("name", "data"), FOUND)
def test_inputs_that_once_crashed_are_refused(name, data):
    TARGETS[name](data)
