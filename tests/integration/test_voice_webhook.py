"""The voice webhook over real HTTP: signatures, answers, refusals."""

import httpx2
import structlog

from gateway.settings import DEV_TWILIO_ACCOUNT_SID
from gateway.simulator.caller import parse_connect_stream
from tests.integration.harness import new_call_sid, post_voice, running_gateway, voice_form


async def test_signed_webhook_gets_connect_stream_twiml_with_a_token():
    """A correctly signed call gets <Connect><Stream> to the ws URL, with a one-time token parameter."""
    async with running_gateway() as settings:
        response = await post_voice(settings, voice_form(new_call_sid()))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    url, parameters = parse_connect_stream(response.text)
    assert url == settings.stream_url == f"ws://127.0.0.1:{settings.port}/twilio/media"
    assert set(parameters) == {"token"}
    assert len(parameters["token"]) >= 32


async def test_unsigned_webhook_is_refused_with_403_and_logged():
    """No X-Twilio-Signature: 403 with the reason, and a warning record saying why."""
    with structlog.testing.capture_logs() as logs:
        async with running_gateway() as settings:
            response = await post_voice(settings, voice_form(new_call_sid()), signature=None)
    assert response.status_code == 403
    assert "missing X-Twilio-Signature" in response.text
    assert any(e["event"] == "webhook.rejected" and e["reason"] == "missing X-Twilio-Signature" for e in logs)


async def test_wrongly_signed_webhook_is_refused_with_403():
    """A signature made with another auth token, or over other fields, is refused."""
    async with running_gateway() as settings:
        wrong_token = await post_voice(settings, voice_form(new_call_sid()), token="not-the-token")
        forged = await post_voice(
            settings, voice_form(new_call_sid()), signature="AAAAAAAAAAAAAAAAAAAAAAAAAAA="
        )
    assert (wrong_token.status_code, forged.status_code) == (403, 403)
    assert "does not sign" in wrong_token.text


async def test_signature_covers_the_query_string():
    """A webhook URL with a query string is validated over the URL exactly as requested."""
    async with running_gateway() as settings:
        response = await post_voice(settings, voice_form(new_call_sid()), query="?tenant=a%20b")
    assert response.status_code == 200


async def test_signed_webhook_without_callsid_is_a_400():
    """A signed request that lacks a usable CallSid gets a 400 with a message."""
    async with running_gateway() as settings:
        form = voice_form(new_call_sid())
        del form["CallSid"]
        response = await post_voice(settings, form)
    assert response.status_code == 400
    assert "CallSid" in response.text


async def test_other_accounts_are_refused_when_an_account_is_configured():
    """With TWILIO_ACCOUNT_SID set, a webhook signed for another account's call is refused."""
    async with running_gateway({"TWILIO_ACCOUNT_SID": "AC" + "1" * 32}) as settings:
        response = await post_voice(settings, voice_form(new_call_sid(), account_sid=DEV_TWILIO_ACCOUNT_SID))
    assert response.status_code == 403
    assert "AccountSid" in response.text


async def test_healthz_answers():
    """GET /healthz says the process is alive."""
    async with running_gateway() as settings, httpx2.AsyncClient() as client:
        response = await client.get(settings.public_url + "/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
