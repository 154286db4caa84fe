"""What Twilio does with the gateway's TwiML: the signed voice webhook, the answer parsed for
`<Connect><Stream>` (its parameters and `action`), and, when a stream has ended, the
signed request to the action URL for what comes next."""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree import ElementTree

import httpx2

from gateway.twilio.signature import compute_signature


class SimulationError(Exception):
    """The call could not be set up (webhook refused, TwiML unusable, stream refused)."""


@dataclass(frozen=True, slots=True)
class CallParty:
    """The call as Twilio describes it in every request it makes for it."""

    call_sid: str
    account_sid: str
    caller: str
    called: str
    direction: str

    def form(self, status: str) -> dict[str, str]:
        return {
            "CallSid": self.call_sid, "AccountSid": self.account_sid, "From": self.caller,
            "To": self.called, "Caller": self.caller, "Called": self.called, "CallStatus": status,
            "Direction": self.direction, "ApiVersion": "2010-04-01",
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class ConnectStream:
    url: str
    parameters: dict[str, str]
    action: str | None  # where Twilio asks what follows once the stream ends


async def voice_webhook(gateway_url: str, auth_token: str, party: CallParty) -> ConnectStream:
    """POST the voice webhook; its answer must connect a stream."""
    status = "ringing" if party.direction == "inbound" else "in-progress"
    twiml = await _signed_post(gateway_url.rstrip("/") + "/twilio/voice", auth_token, party.form(status))
    connect = parse_twiml(twiml)
    if connect is None:
        raise SimulationError(f"TwiML has no <Connect><Stream url>: {twiml[:200]}")
    return connect


async def follow_action(action_url: str, auth_token: str, party: CallParty) -> ConnectStream | None:
    """The stream ended with the call still up: POST the `<Connect action>` as Twilio does,
    and return the next stream, or None when the TwiML ends the call."""
    return parse_twiml(await _signed_post(action_url, auth_token, party.form("in-progress")))


def parse_connect_stream(twiml: str) -> tuple[str, dict[str, str]]:
    """The `<Connect><Stream url>` of a TwiML answer and its `<Parameter>`s."""
    connect = parse_twiml(twiml)
    if connect is None:
        raise SimulationError(f"TwiML has no <Connect><Stream url>: {twiml[:200]}")
    return connect.url, connect.parameters


def parse_twiml(twiml: str) -> ConnectStream | None:
    """The stream a TwiML answer connects; None for TwiML without one (`<Hangup/>`, `<Say>`)."""
    try:
        root = ElementTree.fromstring(twiml)
    except ElementTree.ParseError as exc:
        raise SimulationError(f"TwiML is not XML: {exc}") from None
    if root.tag != "Response":
        raise SimulationError(f"TwiML is not a <Response>: {twiml[:200]}")
    connect, stream = root.find("./Connect"), root.find("./Connect/Stream")
    if connect is None or stream is None or not stream.get("url"):
        return None
    url = stream.get("url", "")
    if "?" in url:
        raise SimulationError("Twilio drops query strings from <Stream url>; the URL carries one")
    parameters = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return ConnectStream(url, parameters, connect.get("action"))


async def _signed_post(url: str, auth_token: str, form: dict[str, str]) -> str:
    signature = compute_signature(auth_token, url, {name: [value] for name, value in form.items()})
    try:
        async with httpx2.AsyncClient(timeout=15) as client:
            response = await client.post(url, data=form, headers={"X-Twilio-Signature": signature})
    except httpx2.HTTPError as exc:
        raise SimulationError(f"{url} unreachable: {exc!r}") from None
    if response.status_code != 200:
        raise SimulationError(f"{url} answered HTTP {response.status_code}: {response.text.strip()}")
    return response.text
