"""The control plane over real loopback HTTP and WebSocket: admin REST, admin WebSocket, outbound calls."""

import json
import sys
from contextlib import asynccontextmanager

import httpx2
import pytest
import structlog
import trio
import trio.lowlevel
import trio_websocket
from openapi_spec_validator import validate

from gateway.settings import DEV_ADMIN_TOKEN, DEV_TWILIO_AUTH_TOKEN
from gateway.simulator.audio import caller_phrase
from gateway.simulator.caller import CallScript, simulate_call
from gateway.twilio.signature import compute_signature
from tests.integration.harness import running
from tests.twilio_rest_fake import fake_twilio_rest

ACCOUNT = "AC" + "5" * 32
AUTH = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}


async def admin(settings, method, path, body=None, headers=AUTH):
    async with httpx2.AsyncClient() as client:
        return await client.request(method, settings.public_url + path, json=body, headers=headers)


BEARER = ((b"Authorization", f"Bearer {DEV_ADMIN_TOKEN}".encode()),)


@asynccontextmanager
async def admin_ws(settings, headers=BEARER, **options):
    url = settings.public_url.replace("http://", "ws://") + "/admin/ws"
    async with trio_websocket.open_websocket_url(url, extra_headers=list(headers), **options) as ws:
        yield ws


async def ask(ws, **request):
    """Send a request and return the reply carrying its id (skipping events and heartbeats)."""
    await ws.send_message(json.dumps(request))
    while True:
        message = json.loads(await ws.get_message())
        if message.get("id") == request.get("id") and message["type"] in ("result", "error"):
            return message


async def next_event(ws, topic, seconds=30):
    with trio.fail_after(seconds):
        while True:
            message = json.loads(await ws.get_message())
            if message.get("type") == "event" and message["topic"] == topic:
                return message


@asynccontextmanager
async def outbound_gateway(**overrides):
    """A gateway with Twilio REST pointed at a local recorder, and that recorder."""
    async with fake_twilio_rest() as twilio:
        env = {
            "TWILIO_ACCOUNT_SID": ACCOUNT,
            "TWILIO_API_BASE_URL": twilio.url,
            "GATEWAY_CALLER_ID": "+15550009999",
        }
        async with running(env, **overrides) as gateway:
            yield gateway, twilio


def twilio_call_sid(twilio):
    """The fake REST server answers create-call with the sid it was asked for; here: a fixed one."""
    return "CA" + "d" * 32


class TestAuthentication:
    async def test_rest_without_or_with_a_wrong_token_is_401(self):
        """Unauthenticated admin requests are refused with 401 and a JSON error, nothing else happens."""
        async with running() as gateway:
            missing = await admin(gateway.settings, "GET", "/admin/calls", headers={})
            wrong = await admin(
                gateway.settings, "GET", "/admin/calls", headers={"Authorization": "Bearer nope"}
            )
        assert (missing.status_code, wrong.status_code) == (401, 401)
        assert missing.json()["error"]["code"] == "unauthorized"

    async def test_websocket_with_a_wrong_token_is_refused_at_the_upgrade(self):
        """A wrong bearer token on the upgrade gets HTTP 401: no WebSocket at all."""
        async with running() as gateway:
            with pytest.raises(trio_websocket.ConnectionRejected) as info:
                async with admin_ws(gateway.settings, headers=[(b"Authorization", b"Bearer nope")]):
                    pass
        assert info.value.status_code == 401

    async def test_websocket_without_a_header_must_authenticate_first_or_be_closed_4401(self):
        """Without a header the first message must be auth; anything else closes with 4401, no event flows."""
        async with running() as gateway:
            async with admin_ws(gateway.settings, headers=()) as ws:
                await ws.send_message(json.dumps({"id": 1, "type": "list_calls"}))
                with pytest.raises(trio_websocket.ConnectionClosed) as info:
                    await ws.get_message()
            async with admin_ws(gateway.settings, headers=()) as ws:
                await ws.send_message(json.dumps({"type": "auth", "token": DEV_ADMIN_TOKEN}))
                welcome = json.loads(await ws.get_message())
        assert info.value.reason.code == 4401
        assert welcome["type"] == "welcome"

    async def test_openapi_document_is_valid_and_covers_every_route(self):
        """/admin/openapi.json is valid OpenAPI 3.1 and names every admin REST route."""
        async with running() as gateway:
            document = (await admin(gateway.settings, "GET", "/admin/openapi.json")).json()
            routes = {
                rule.rule for rule in gateway._control.url_map.iter_rules() if rule.rule.startswith("/admin")
            }
        validate(document)
        documented = {path.replace("{call_sid}", "<call_sid>") for path in document["paths"]}
        assert routes - {"/admin/ws"} == documented


class TestOutboundCalls:
    async def test_originate_sends_a_correct_create_call_request(self):
        """POST /admin/calls -> Twilio REST create with To, From, our webhook, status callback events."""
        async with outbound_gateway() as (gateway, twilio):
            twilio.answers = [(201, {"sid": twilio_call_sid(twilio), "status": "queued"})]
            response = await admin(gateway.settings, "POST", "/admin/calls", {"to": "+15551230000"})
        assert response.status_code == 201
        assert response.json()["state"] == "ringing"
        [create] = twilio.requests
        base = gateway.settings.public_url
        assert create.path == f"/2010-04-01/Accounts/{ACCOUNT}/Calls.json"
        assert create.form == {
            "To": ["+15551230000"], "From": ["+15550009999"], "Url": [base + "/twilio/voice"],
            "Method": ["POST"], "StatusCallback": [base + "/twilio/status"], "StatusCallbackMethod": ["POST"],
            "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"], "Timeout": ["30"],
        }  # fmt: skip

    async def test_an_answered_outbound_call_streams_and_is_listed_live_then_ended(self):
        """Status callbacks move it along; answered, it streams like an inbound call and shows as live."""
        async with outbound_gateway() as (gateway, twilio):
            sid = twilio_call_sid(twilio)
            twilio.answers = [(201, {"sid": sid, "status": "queued"})]
            await admin(gateway.settings, "POST", "/admin/calls", {"to": "+15551230000"})
            await status_callback(gateway.settings, sid, "ringing")
            ringing = (await admin(gateway.settings, "GET", f"/admin/calls/{sid}")).json()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(answer_outbound, gateway.settings, sid)
                live = await wait_for_state(gateway.settings, sid, "live")
            ended = (await admin(gateway.settings, "GET", f"/admin/calls/{sid}")).json()
        assert (ringing["state"], ringing["twilio_status"]) == ("ringing", "ringing")
        assert (live["direction"], live["stream_sid"].startswith("MZ")) == ("outbound", True)
        assert (ended["state"], ended["end_reason"]) == ("ended", "twilio_stop")

    async def test_a_call_nobody_answers_ends_with_twilios_status(self):
        """A final status callback (no-answer) ends a ringing call with that reason."""
        async with outbound_gateway() as (gateway, twilio):
            sid = twilio_call_sid(twilio)
            twilio.answers = [(201, {"sid": sid, "status": "queued"})]
            await admin(gateway.settings, "POST", "/admin/calls", {"to": "+15551230000"})
            await status_callback(gateway.settings, sid, "no-answer")
            record = (await admin(gateway.settings, "GET", f"/admin/calls/{sid}")).json()
        assert (record["state"], record["end_reason"]) == ("ended", "no-answer")

    async def test_twilio_errors_surface_with_twilios_code(self):
        """A refused create-call is a 502 carrying Twilio's code and message."""
        async with outbound_gateway() as (gateway, twilio):
            twilio.answers = [(400, {"code": 21215, "message": "Geo permission not enabled", "status": 400})]
            response = await admin(gateway.settings, "POST", "/admin/calls", {"to": "+15551230000"})
        assert response.status_code == 502
        assert response.json()["error"] == {
            "code": "twilio_error",
            "message": "Twilio refused: Geo permission not enabled",
            "twilio_code": 21215,
        }

    @pytest.mark.parametrize(
        ("body", "status"),
        [({}, 400), ({"to": "555"}, 400), ("not an object", 400)],
        ids=["no-to", "bad", "array"],
    )
    async def test_bad_originate_requests_are_400(self, body, status):
        """Missing or malformed numbers, or a body that is not an object, are refused with a message."""
        async with outbound_gateway() as (gateway, _twilio):
            response = await admin(gateway.settings, "POST", "/admin/calls", body)
        assert response.status_code == status
        assert response.json()["error"]["code"] == "bad_request"


async def status_callback(settings, sid, status):
    url = settings.public_url + "/twilio/status"
    form = {"CallSid": sid, "AccountSid": ACCOUNT, "CallStatus": status, "Direction": "outbound-api"}
    signature = compute_signature(DEV_TWILIO_AUTH_TOKEN, url, {k: [v] for k, v in form.items()})
    async with httpx2.AsyncClient() as client:
        response = await client.post(url, data=form, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 204


async def answer_outbound(settings, sid, script=None):
    script = script or CallScript(utterance=caller_phrase())
    return await simulate_call(
        settings.public_url, DEV_TWILIO_AUTH_TOKEN, ACCOUNT, script, call_sid=sid, direction="outbound-api"
    )


async def wait_for_state(settings, sid, state, seconds=15):
    with trio.fail_after(seconds):
        while True:
            record = (await admin(settings, "GET", f"/admin/calls/{sid}")).json()
            if record.get("state") == state:
                return record
            await trio.sleep(0.05)


class TestCallControl:
    async def test_hang_up_a_live_call_through_rest_and_locally(self):
        """Hang-up: Twilio REST Status=completed, then the stream ends as operator_hangup."""
        async with outbound_gateway() as (gateway, twilio):
            sid = "CA" + "e" * 32
            async with trio.open_nursery() as nursery:
                nursery.start_soon(answer_outbound, gateway.settings, sid)
                await wait_for_state(gateway.settings, sid, "live")
                response = await admin(gateway.settings, "POST", f"/admin/calls/{sid}/hangup")
            ended = await wait_for_state(gateway.settings, sid, "ended")
        assert response.status_code == 200
        assert [r.form for r in twilio.requests] == [{"Status": ["completed"]}]
        assert ended["end_reason"] == "operator_hangup"

    async def test_a_hang_up_twilio_refuses_leaves_the_call_live_not_stuck_ending(self):
        """Twilio answers the hang-up with an error: a 502 with its code, and the call is
        back to live (still on the line), so the operator can try again."""
        async with outbound_gateway() as (gateway, twilio):
            sid = "CA" + "9" * 32
            async with trio.open_nursery() as nursery:
                nursery.start_soon(answer_outbound, gateway.settings, sid)
                await wait_for_state(gateway.settings, sid, "live")
                twilio.answers = [(400, {"code": 20003, "message": "Authenticate", "status": 400})]
                refused = await admin(gateway.settings, "POST", f"/admin/calls/{sid}/hangup")
                record = (await admin(gateway.settings, "GET", f"/admin/calls/{sid}")).json()
                retried = await admin(gateway.settings, "POST", f"/admin/calls/{sid}/hangup")
        assert (refused.status_code, refused.json()["error"]["twilio_code"]) == (502, 20003)
        assert record["state"] == "live"
        assert retried.status_code == 200

    async def test_transfer_over_the_websocket(self):
        """transfer: a <Dial> through Twilio REST, the call ends as transferred, the reply echoes the id."""
        async with outbound_gateway() as (gateway, twilio):
            sid = "CA" + "f" * 32
            async with trio.open_nursery() as nursery, admin_ws(gateway.settings) as ws:
                nursery.start_soon(answer_outbound, gateway.settings, sid)
                await wait_for_state(gateway.settings, sid, "live")
                reply = await ask(ws, id="t1", type="transfer", call_sid=sid, to="+15550001111")
            ended = await wait_for_state(gateway.settings, sid, "ended")
        assert (reply["type"], reply["data"]["call_sid"]) == ("result", sid)
        assert twilio.requests[0].form["Twiml"][0].endswith("<Dial>+15550001111</Dial></Response>")
        assert ended["end_reason"] == "transferred"

    async def test_say_reaches_the_ai_as_an_instruction_it_answers(self):
        """say: the AI gets a system item with the operator's words and is asked to respond."""
        with structlog.testing.capture_logs() as records:
            async with outbound_gateway() as (gateway, _twilio):
                sid = "CA" + "1" * 32
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(answer_outbound, gateway.settings, sid)
                    await wait_for_state(gateway.settings, sid, "live")
                    response = await admin(
                        gateway.settings,
                        "POST",
                        f"/admin/calls/{sid}/say",
                        {"text": "Your order has shipped."},
                    )
        items = [r for r in records if r["event"] == "local_agent.item_created" and r.get("role") == "system"]
        assert response.status_code == 202
        assert len(items) == 1

    async def test_operations_on_unknown_or_ended_calls_are_refused_clearly(self):
        """Unknown CallSid: 404; a malformed one: 400; a call that is not live: 409."""
        async with outbound_gateway() as (gateway, _twilio):
            unknown = await admin(gateway.settings, "POST", "/admin/calls/CA" + "9" * 32 + "/hangup")
            malformed = await admin(gateway.settings, "GET", "/admin/calls/nope")
            sid = "CA" + "2" * 32
            await answer_outbound(gateway.settings, sid, CallScript(utterance=b"", max_seconds=1))
            ended = await admin(gateway.settings, "POST", f"/admin/calls/{sid}/say", {"text": "hi"})
        assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "not_found")
        assert malformed.status_code == 400
        assert (ended.status_code, ended.json()["error"]["code"]) == (409, "conflict")


class TestEvents:
    async def test_a_subscriber_gets_its_calls_events_and_only_those(self):
        """Filtered by CallSid: call.started, transcript and call.ended of that call, none of another's."""
        async with outbound_gateway() as (gateway, _twilio):
            watched, other = "CA" + "3" * 32, "CA" + "4" * 32
            async with admin_ws(gateway.settings) as ws:
                reply = await ask(
                    ws, id="s", type="subscribe", topics=["call.*", "transcript"], call_sid=watched
                )
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(answer_outbound, gateway.settings, other)
                    nursery.start_soon(answer_outbound, gateway.settings, watched)
                    started = await next_event(ws, "call.started")
                    transcript = await next_event(ws, "transcript")
                    ended = await next_event(ws, "call.ended")
        assert reply["data"]["subscription"].startswith("s")
        assert {started["call_sid"], transcript["call_sid"], ended["call_sid"]} == {watched}
        assert transcript["data"]["role"] in ("caller", "assistant")
        assert ended["data"]["end_reason"] == "twilio_stop"

    async def test_direction_filter(self):
        """A subscription for inbound calls does not see an outbound call's events."""
        async with outbound_gateway() as (gateway, _twilio), admin_ws(gateway.settings) as ws:
            await ask(ws, id="s", type="subscribe", topics=["call.started"], direction="inbound")
            await answer_outbound(gateway.settings, "CA" + "6" * 32, CallScript(utterance=b"", max_seconds=1))
            with trio.move_on_after(0.5) as quiet:
                await next_event(ws, "call.started")
        assert quiet.cancelled_caught

    async def test_a_stuck_subscriber_never_slows_a_call(self):
        """A client that stops reading, under a flood of events, costs the call nothing; it loses events."""
        with structlog.testing.capture_logs() as records:
            async with (
                outbound_gateway(admin_outbox_events=16) as (gateway, _twilio),
                # message_queue_size=1 and no reads: the client stops reading its socket, TCP fills up.
                admin_ws(gateway.settings, message_queue_size=1) as stuck,
            ):
                await stuck.send_message(json.dumps({"id": 1, "type": "subscribe", "topics": ["*"]}))
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(flood, gateway.bus, 200_000)
                    report = await answer_outbound(gateway.settings, "CA" + "7" * 32)
                    nursery.cancel_scope.cancel()
        summary = next(r for r in records if r["event"] == "call.summary")
        assert report.completed
        assert report.violations == []
        assert summary["underruns"] == 0
        assert caller_phrase()[400:16000] in report.heard  # the answer played whole
        disconnected = next(r for r in records if r["event"] == "admin.disconnected")
        assert disconnected["dropped"] > 100_000


async def read_until_closed(ws, seconds=10):
    """Every message until the server closes; returns them and the close reason."""
    messages = []
    with trio.fail_after(seconds):
        try:
            while True:
                messages.append(json.loads(await ws.get_message()))
        except trio_websocket.ConnectionClosed as exc:
            return messages, exc.reason


async def flood(bus, count):
    """Publish like a very busy process: many small events, yielding now and then."""
    for index in range(count):
        bus.publish("metrics", {"index": index, "padding": "x" * 200})
        if index % 200 == 0:
            await trio.lowlevel.checkpoint()


class TestWebSocketInput:
    async def test_bad_requests_get_error_replies_and_the_connection_stays(self):
        """Malformed JSON, unknown command, missing field, unknown call: error replies; then one works."""
        async with running() as gateway, admin_ws(gateway.settings) as ws:
            await ws.send_message("{not json")
            malformed = json.loads(await ws.get_message())
            while malformed["type"] != "error":
                malformed = json.loads(await ws.get_message())
            unknown = await ask(ws, id=2, type="fly")
            missing = await ask(ws, id=3, type="get_call")
            not_found = await ask(ws, id=4, type="get_call", call_sid="CA" + "8" * 32)
            works = await ask(ws, id=5, type="list_calls")
        assert malformed["error"]["code"] == "bad_request"
        assert unknown["error"]["code"] == "unknown_command"
        assert missing["error"] == {"code": "bad_request", "message": "missing field 'call_sid'"}
        assert not_found["error"]["code"] == "not_found"
        assert works == {"id": 5, "type": "result", "data": []}

    async def test_an_oversized_message_closes_with_1009(self):
        """A frame above the limit closes the connection with 1009."""
        async with running(admin_max_message_bytes=2048) as gateway, admin_ws(gateway.settings) as ws:
            await ws.send_message(json.dumps({"id": 1, "type": "say", "text": "x" * 5000}))
            _, closed = await read_until_closed(ws)
        assert closed.code == 1009

    async def test_heartbeats_flow_and_a_silent_client_is_closed_4408(self):
        """The server sends heartbeats; a client that never answers is closed as idle."""
        async with (
            running(admin_heartbeat_s=0.3, admin_idle_timeout_s=1.0) as gateway,
            admin_ws(gateway.settings) as ws,
        ):
            messages, closed = await read_until_closed(ws)
        assert "heartbeat" in [message["type"] for message in messages]
        assert closed.code == 4408


class TestDrain:
    async def test_drain_declines_new_calls_politely_and_refuses_to_originate(self):
        """After /admin/drain, webhooks get a spoken decline and hang-up; originate is 503."""
        async with outbound_gateway() as (gateway, _twilio):
            drain = await admin(gateway.settings, "POST", "/admin/drain")
            webhook = await inbound_webhook(gateway.settings)
            originate = await admin(gateway.settings, "POST", "/admin/calls", {"to": "+15551230000"})
        assert drain.json() == {"instance": gateway.settings.instance_id, "draining": True, "live_calls": 0}
        assert "<Say>" in webhook.text
        assert "<Hangup/>" in webhook.text
        assert originate.status_code == 503


async def inbound_webhook(settings):
    url = settings.public_url + "/twilio/voice"
    form = {"CallSid": "CA" + "0" * 32, "AccountSid": ACCOUNT, "From": "+15550001", "To": "+15550002"}
    signature = compute_signature(DEV_TWILIO_AUTH_TOKEN, url, {k: [v] for k, v in form.items()})
    async with httpx2.AsyncClient() as client:
        return await client.post(url, data=form, headers={"X-Twilio-Signature": signature})


class TestCommandLine:
    async def test_call_calls_and_watch(self):
        """`gateway call` places a call, `gateway calls --all` lists it, `gateway watch` prints its events."""
        async with outbound_gateway() as (gateway, twilio):
            url = gateway.settings.public_url
            twilio.answers = [(201, {"sid": "CA" + "c" * 32, "status": "queued"})]
            placed = await cli("call", "+15551230000", "--url", url)
            async with trio.open_nursery() as nursery:
                watched = {}

                async def watch():
                    watched["output"] = await cli("watch", "--url", url, "--for", "12")

                nursery.start_soon(watch)
                await trio.sleep(1.5)
                await answer_outbound(
                    gateway.settings, "CA" + "b" * 32, CallScript(utterance=b"", max_seconds=2)
                )
            listed = await cli("calls", "--all", "--url", url)
        assert f"placed {'CA' + 'c' * 32} to +15551230000: ringing" in placed
        assert "CA" + "c" * 32 in listed
        assert "ringing" in listed
        assert "call.started" in watched["output"]
        assert "call.ended" in watched["output"]


async def cli(*args):
    result = await trio.run_process(
        [sys.executable, "-m", "gateway", *args], capture_stdout=True, capture_stderr=True, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()
