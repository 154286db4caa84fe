"""The TwiML answer to the voice webhook."""

from xml.etree import ElementTree

from gateway.twilio import twiml


def test_connect_stream_carries_url_and_parameters_escaped():
    """<Connect><Stream url> with each parameter as <Parameter>, XML-escaped, no query string."""
    xml = twiml.connect_stream("wss://gw.example.com/twilio/media", {"token": 'a"<b>&'})
    root = ElementTree.fromstring(xml)
    stream = root.find("./Connect/Stream")
    assert stream.get("url") == "wss://gw.example.com/twilio/media"
    assert [(p.get("name"), p.get("value")) for p in stream] == [("token", 'a"<b>&')]
    assert len(root) == 1
    assert root.find("./Connect").tail is None
