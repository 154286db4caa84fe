"""The Twilio REST client against a real HTTP server standing in for Twilio."""

import httpx2
import pytest

from actors.call_control import CallControlError
from gateway.settings import Secret
from gateway.twilio.rest import TwilioCallControl, TwilioRest, TwilioRestError
from tests.twilio_rest_fake import fake_twilio_rest

ACCOUNT = "AC" + "1" * 32
CALL = "CA" + "2" * 32


def rest(client, url):
    return TwilioRest(client, ACCOUNT, Secret("tok"), url, backoff_s=0.01)


async def test_hang_up_posts_status_completed_with_basic_auth():
    """Hang-up is POST Calls/{sid}.json with Status=completed, authenticated as the account."""
    async with fake_twilio_rest() as twilio, httpx2.AsyncClient() as client:
        await rest(client, twilio.url).hang_up(CALL)
    [sent] = twilio.requests
    assert sent.path == f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{CALL}.json"
    assert sent.form == {"Status": ["completed"]}
    assert (sent.user, sent.password) == (ACCOUNT, "tok")


@pytest.mark.parametrize(("status", "code"), [(404, 20404), (400, 21220)])
async def test_hanging_up_a_call_that_already_ended_is_success(status, code):
    """20404 (no such call) and 21220 (call not in progress) mean the leg is already down."""
    async with fake_twilio_rest() as twilio, httpx2.AsyncClient() as client:
        twilio.answers = [(status, {"code": code, "message": "gone", "status": status})]
        await rest(client, twilio.url).hang_up(CALL)


async def test_429_and_5xx_are_retried_then_succeed():
    """Rate limits and server errors are retried with backoff."""
    async with fake_twilio_rest() as twilio, httpx2.AsyncClient() as client:
        twilio.answers = [(429, {"code": 20429, "message": "Too Many Requests"}), (503, {"message": "busy"})]
        await rest(client, twilio.url).hang_up(CALL)
    assert len(twilio.requests) == 3


async def test_other_errors_surface_with_twilios_code_and_message():
    """A 4xx that is not 'already ended' raises with Twilio's code and message, without retries."""
    async with fake_twilio_rest() as twilio, httpx2.AsyncClient() as client:
        twilio.answers = [
            (400, {"code": 21210, "message": "'From' phone number not verified", "status": 400})
        ]
        with pytest.raises(TwilioRestError, match="21210: 'From' phone number not verified") as info:
            await rest(client, twilio.url).redirect(CALL, "<Response/>")
    assert (info.value.status, info.value.code) == (400, 21210)
    assert len(twilio.requests) == 1


async def test_transfer_replaces_the_twiml_with_a_dial():
    """transfer() sends Twiml with <Dial> to the destination; failures become CallControlError."""
    async with fake_twilio_rest() as twilio, httpx2.AsyncClient() as client:
        control = TwilioCallControl(rest(client, twilio.url), CALL)
        await control.transfer("+15550001111")
        twilio.answers = [(400, {"code": 21220, "message": "not in progress"})]
        with pytest.raises(CallControlError, match="21220"):
            await control.transfer("+15550001111")
    assert twilio.requests[0].form["Twiml"] == [
        '<?xml version="1.0" encoding="UTF-8"?><Response><Dial>+15550001111</Dial></Response>'
    ]
