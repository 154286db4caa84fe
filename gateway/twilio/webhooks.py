"""Control-plane HTTP routes on quart-trio: the Twilio webhooks, health, readiness, metrics.

`POST /twilio/voice` is what a Twilio number's Voice URL points at. The request must
carry an `X-Twilio-Signature` over the public URL and every form field (403 otherwise,
logged with the reason); the answer is TwiML connecting the call to the media stream,
with a one-time token bound to the CallSid as a `<Parameter>` (Twilio drops query
strings from stream URLs), or, when admission refuses (draining, at capacity), TwiML
that declines politely.

`GET /healthz` says the process is alive; `GET /readyz` whether it takes calls (503 with
the reason otherwise); `GET /metrics` is the Prometheus exposition, behind a bearer
token (`GATEWAY_METRICS_TOKEN`; open without one only in development mode).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

import structlog
from quart import Response, request
from quart_trio import QuartTrio

from gateway.admin.operations import CallOperations
from gateway.calls.admission import Admission
from gateway.observability.metrics import CONTENT_TYPE, GatewayMetrics
from gateway.settings import Settings
from gateway.twilio import twiml
from gateway.twilio.signature import is_valid_signature
from gateway.twilio.stream_tokens import StreamTokens

log = structlog.get_logger("gateway.twilio.webhooks")

_CALL_SID = re.compile(r"CA[0-9a-zA-Z]{32}")
MAX_WEBHOOK_BYTES = 64 * 1024  # a voice webhook is a few hundred bytes of form fields


DECLINE = "Sorry, we cannot take your call right now. Please call again later."


def create_control_plane(
    settings: Settings,
    tokens: StreamTokens,
    operations: CallOperations,
    admission: Admission,
    metrics: GatewayMetrics,
    *,
    on_call: Callable[[str], None] | None = None,
) -> QuartTrio:
    """The control-plane app; `on_call(call_sid)` runs for each accepted voice webhook (pre-warm)."""
    app = QuartTrio(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_WEBHOOK_BYTES

    @app.post("/twilio/voice")
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
        await operations.incoming(call_sid, form)
        log.info("call.webhook", call_sid=call_sid, direction=form.get("Direction", ""))
        return _twiml(twiml.connect_stream(settings.stream_url, {"token": token}))

    @app.post("/twilio/status")
    async def twilio_status() -> Response:
        form, refusal = await _signed_form(settings)
        if refusal is not None:
            return refusal
        await operations.status_callback(form)
        log.info("call.status", call_sid=form.get("CallSid", ""), status=form.get("CallStatus", ""))
        return Response("", 204)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> tuple[dict[str, object], int]:
        refusal = admission.refusal()
        body: dict[str, object] = {"in_flight": admission.in_flight, "max_calls": admission.max_calls}
        if refusal is None:
            return {"status": "ready", **body}, 200
        return {"status": "not_ready", "reason": refusal.value, **body}, 503

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        refusal = _metrics_refusal(settings)
        if refusal is not None:
            return _text(refusal, 401)
        return Response(metrics.render(), 200, content_type=CONTENT_TYPE)

    return app


async def _signed_form(settings: Settings) -> tuple[dict[str, str], Response | None]:
    """The request's form fields, or a 403 (logged) if the Twilio signature does not hold."""
    form = await request.form
    params = {name: form.getlist(name) for name in form}
    refusal = _signature_refusal(settings, params)
    if refusal is None:
        return {name: values[-1] for name, values in params.items()}, None
    log.warning("webhook.rejected", path=request.path, reason=refusal, client=request.remote_addr)
    return {}, _text(refusal, 403)


def _metrics_refusal(settings: Settings) -> str | None:
    token = settings.metrics_token.reveal()
    if not token:
        if settings.development_mode:
            return None
        return "metrics need GATEWAY_METRICS_TOKEN; scrape with it as a bearer token"
    given = request.headers.get("Authorization", "")
    if not secrets.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return "missing or wrong bearer token"
    return None


def _twiml(body: str) -> Response:
    return Response(body, 200, content_type="text/xml; charset=utf-8")


def _signature_refusal(settings: Settings, params: dict[str, list[str]]) -> str | None:
    signature = request.headers.get("X-Twilio-Signature")
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
