"""Twilio's webhooks, as quart-trio routes: the voice webhook and status callbacks.

`POST /twilio/voice` is what a Twilio number's Voice URL points at. The request must
carry an `X-Twilio-Signature` over the public URL and every form field (403 otherwise,
logged with the reason); the answer is TwiML connecting the call to the media stream,
with a one-time token bound to the CallSid as a `<Parameter>` (Twilio drops query
strings from stream URLs), or, when admission refuses (draining, at capacity), TwiML
that declines politely.

`POST /twilio/status` takes the status callbacks of outbound calls (signed the same way)
and keeps their records.

In a fleet the `<Connect>` carries `action="{public}/twilio/resume"`: when a stream ends,
Twilio asks there (any instance) what comes next. A call being moved (its handoff
waits in Redis) gets a new `<Connect><Stream>` with a fresh token; any other call,
`<Hangup/>`, so a stream the gateway ends still ends the call. When Redis cannot be
asked, `<Hangup/>` too: the gateway ends calls by closing their stream (an AI hang-up
whose REST request failed, a call the AI cannot serve), and a signed request replayed
while Redis is down must not bring a call back.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import structlog
from quart import Blueprint, Response, request

from gateway.calls.admission import Admission
from gateway.calls.handoff import Handoffs
from gateway.calls.ledger import FINAL_STATUSES, CallLedger
from gateway.calls.registry import RegistryUnavailable
from gateway.observability.metrics import GatewayMetrics
from gateway.settings import Settings
from gateway.twilio import twiml
from gateway.twilio.signature import is_valid_signature
from gateway.twilio.stream_tokens import StreamTokens

log = structlog.get_logger("gateway.twilio.webhooks")

_CALL_SID = re.compile(r"CA[0-9a-zA-Z]{32}")


DECLINE = "Sorry, we cannot take your call right now. Please call again later."


def twilio_blueprint(
    settings: Settings,
    tokens: StreamTokens,
    ledger: CallLedger,
    admission: Admission,
    metrics: GatewayMetrics,
    *,
    on_call: Callable[[str], None] | None = None,
    handoffs: Handoffs | None = None,
) -> Blueprint:
    """The webhook routes; `on_call(call_sid)` runs for each accepted voice webhook (pre-warm)."""
    app = Blueprint("twilio", __name__, url_prefix="/twilio")
    action = settings.public_url + "/twilio/resume" if handoffs is not None else None

    @app.post("/voice")
    async def twilio_voice() -> Response:
        form, refusal = await _signed_form(settings)
        if refusal is not None:
            return refusal
        call_sid = form.get("CallSid", "")
        if not _CALL_SID.fullmatch(call_sid):
            log.warning("webhook.rejected", path=request.path, reason="CallSid missing or malformed")
            return _text("CallSid missing or malformed", 400)
        account = settings.twilio_account_sid
        if account and form.get("AccountSid") != account:
            log.warning(
                "webhook.rejected", path=request.path, reason="AccountSid mismatch", call_sid=call_sid
            )
            return _text("AccountSid does not match TWILIO_ACCOUNT_SID", 403)
        declined = admission.refusal()
        if declined is not None:
            metrics.admission_rejects.labels(declined.value).inc()
            log.info(
                "call.declined",
                call_sid=call_sid,
                reason=declined.value,
                in_flight=admission.in_flight,
                max_calls=admission.max_calls,
            )
            return _twiml(twiml.say_and_hang_up(DECLINE))
        token = tokens.mint(call_sid)
        if on_call is not None:
            on_call(call_sid)
        await ledger.answered(call_sid, form)
        log.info("call.webhook", call_sid=call_sid, direction=form.get("Direction", ""))
        return _twiml(twiml.connect_stream(settings.stream_url, {"token": token}, action))

    @app.post("/resume")
    async def twilio_resume() -> Response:
        form, refusal = await _signed_form(settings)
        if refusal is not None:
            return refusal
        call_sid = form.get("CallSid", "")
        if handoffs is None or not _CALL_SID.fullmatch(call_sid):
            return _twiml(twiml.hang_up())
        moving = await _moving(handoffs, call_sid, form.get("CallStatus", ""))
        log.info("call.resume", call_sid=call_sid, moving=moving)
        if not moving:
            return _twiml(twiml.hang_up())
        token = tokens.mint(call_sid)
        return _twiml(twiml.connect_stream(settings.stream_url, {"token": token}, action))

    @app.post("/status")
    async def twilio_status() -> Response:
        form, refusal = await _signed_form(settings)
        if refusal is not None:
            return refusal
        await ledger.status_callback(form)
        log.info("call.status", call_sid=form.get("CallSid", ""), status=form.get("CallStatus", ""))
        return Response("", 204)

    return app


async def _moving(handoffs: Handoffs, call_sid: str, status: str) -> bool:
    """Whether the call goes on in a new stream: it is being moved."""
    if status in FINAL_STATUSES:
        return False  # the caller hung up while the stream was ending
    try:
        return await handoffs.waiting(call_sid)
    except RegistryUnavailable:
        return False


async def _signed_form(settings: Settings) -> tuple[dict[str, str], Response | None]:
    """The request's form fields, or a 403 (logged) if the Twilio signature does not hold."""
    form = await request.form
    params = {name: form.getlist(name) for name in form}
    refusal = _signature_refusal(settings, params)
    if refusal is None:
        return {name: values[-1] for name, values in params.items()}, None
    log.warning("webhook.rejected", path=request.path, reason=refusal, client=request.remote_addr)
    return {}, _text(refusal, 403)


def _twiml(body: str) -> Response:
    return Response(body, 200, content_type="text/xml; charset=utf-8")


def _signature_refusal(settings: Settings, params: dict[str, list[str]]) -> str | None:
    signatures = request.headers.getlist("X-Twilio-Signature")
    if len(signatures) > 1:
        return "X-Twilio-Signature sent more than once"
    signature = signatures[0] if signatures else ""
    if not signature:
        return "missing X-Twilio-Signature"
    url = settings.public_url + request.path
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    if not is_valid_signature(settings.twilio_auth_token.reveal(), url, params, signature):
        return f"X-Twilio-Signature does not sign {url} and its form fields"
    return None


def _text(message: str, status: int) -> Response:
    return Response(message + "\n", status, content_type="text/plain; charset=utf-8")
