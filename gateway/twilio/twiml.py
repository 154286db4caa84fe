"""TwiML the gateway answers with."""

from __future__ import annotations

from collections.abc import Mapping
from xml.sax.saxutils import escape, quoteattr


def connect_stream(stream_url: str, parameters: Mapping[str, str], action: str | None = None) -> str:
    """`<Connect><Stream>`: a bidirectional media stream carrying `parameters` to `start`.

    Nothing follows `</Connect>`. Without `action`, the call ends when the gateway closes
    the stream; with it (in a fleet), Twilio requests `action` for what comes next: the
    same TwiML again when the call was moved, `<Hangup/>` otherwise.
    """
    params = "".join(
        f"<Parameter name={quoteattr(name)} value={quoteattr(value)}/>" for name, value in parameters.items()
    )
    connect = f"<Connect action={quoteattr(action)}>" if action else "<Connect>"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response>{connect}<Stream url={quoteattr(stream_url)}>{params}</Stream></Connect></Response>"
    )


def hang_up() -> str:
    return '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup/></Response>'


def say_and_hang_up(text: str) -> str:
    """A spoken sentence, then hang up: how the gateway declines a call it cannot take."""
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Say>{escape(text)}</Say><Hangup/></Response>'


def dial(destination: str) -> str:
    """Transfer the call: `<Dial>` the destination (replaces the stream when set by REST)."""
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Dial>{escape(destination)}</Dial></Response>'
