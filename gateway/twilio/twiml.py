"""TwiML the gateway answers with."""

from __future__ import annotations

from collections.abc import Mapping
from xml.sax.saxutils import escape, quoteattr


def connect_stream(stream_url: str, parameters: Mapping[str, str]) -> str:
    """`<Connect><Stream>`: a bidirectional media stream carrying `parameters` to `start`.

    Nothing follows `</Connect>`: when the gateway closes the stream, the call ends.
    """
    params = "".join(
        f"<Parameter name={quoteattr(name)} value={quoteattr(value)}/>" for name, value in parameters.items()
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Connect><Stream url={quoteattr(stream_url)}>{params}</Stream></Connect></Response>"
    )


def say_and_hang_up(text: str) -> str:
    """A spoken sentence, then hang up: how the gateway declines a call it cannot take."""
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Say>{escape(text)}</Say><Hangup/></Response>'


def dial(destination: str) -> str:
    """Transfer the call: `<Dial>` the destination (replaces the stream when set by REST)."""
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Dial>{escape(destination)}</Dial></Response>'
