"""The media WebSocket endpoint, `/twilio/media`, as a raw ASGI handler on hypercorn.

Raw ASGI rather than a quart-trio route: the media socket is the hot path, and quart's
WebSocket wrapper costs about twice as much per message (29 vs 15.5 us receive,
trio-stack reference section A).

Admission, in order, each failure logged with its reason:
1. the upgrade's `X-Twilio-Signature` must sign the public ws(s):// stream URL; otherwise
   HTTP 403 before the upgrade is accepted (Twilio logs 31920);
2. `start` must arrive within a bounded time (`connected` may precede it);
3. `start.customParameters.token` must redeem a one-time token minted for this CallSid.
Failures after the upgrade close with 1008 (policy), or with the code of the protocol
error that caused them. Then the call runs under its own supervisor.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
import trio
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, WebsocketScope

from actors.errors import CloseCode, RemoteProtocolError
from actors.message_socket import SocketClosed
from actors.supervisor import CallSettings, CallSupervisor
from actors.twilio_media import Start, TwilioMediaProtocol
from gateway.config import Settings
from gateway.events import CallEventSink, EventBus
from gateway.live_calls import LiveCalls
from gateway.metrics import GatewayMetrics
from gateway.operations import CallOperations
from gateway.realtime_client import RealtimeConnector
from gateway.registry import CallRecord, CallRegistry
from gateway.sockets import ASGIMessageSocket
from gateway.stream_tokens import Redemption, StreamTokens
from gateway.twilio_rest import TwilioCallControl, TwilioRest
from gateway.twilio_signature import is_valid_signature

log = structlog.get_logger("gateway.media")


class MediaEndpoint:
    def __init__(
        self,
        settings: Settings,
        tokens: StreamTokens,
        *,
        ai: RealtimeConnector,
        calls: LiveCalls,
        call_settings: CallSettings,
        rest: TwilioRest | None,
        operations: CallOperations,
        registry: CallRegistry,
        bus: EventBus,
        metrics: GatewayMetrics,
    ) -> None:
        self._settings = settings
        self._tokens = tokens
        self._ai = ai
        self._calls = calls
        self._call_settings = call_settings
        self._rest = rest
        self._operations = operations
        self._registry = registry
        self._bus = bus
        self._metrics = metrics

    async def __call__(
        self, scope: WebsocketScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        refusal = self._check_signature(scope)
        if refusal is not None:
            log.warning("stream.rejected", reason=refusal, client=_client(scope))
            await _refuse_upgrade(send, 403, refusal)
            return
        await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
        socket = ASGIMessageSocket(receive, send)
        protocol = TwilioMediaProtocol()
        start = await self._admit(socket, protocol)
        if start is None:
            return
        sid = start.call_sid
        record = await self._registry.get(sid)
        extras = _summary_extras(record)
        events = CallEventSink(self._bus, sid, extras["direction"], self._metrics.on_call_event)
        control = TwilioCallControl(self._rest, sid) if self._rest is not None else None
        supervisor = CallSupervisor(
            start,
            socket,
            protocol,
            self._ai.for_call(sid),
            self._call_settings,
            control=control,
            events=events,
            summary_extras=extras,
        )
        self._calls.add(supervisor)
        if record is not None and record.answered_at is not None:
            self._metrics.call_setup.observe(max(0.0, time.time() - record.answered_at))
        await self._operations.set_live(sid, start.stream_sid)
        end_reason = "cancelled"
        try:
            end_reason = (await supervisor.run()).end.reason.value
        finally:
            self._metrics.call_ended(supervisor)  # before leaving LiveCalls: counted exactly once
            self._calls.remove(supervisor)
            with trio.CancelScope(shield=True):
                await self._operations.set_ended(sid, end_reason)

    def _check_signature(self, scope: WebsocketScope) -> str | None:
        signature = _header(scope, b"x-twilio-signature")
        if signature is None:
            return "missing X-Twilio-Signature"
        url = self._settings.stream_url
        if scope["query_string"]:
            url += "?" + scope["query_string"].decode("latin-1")
        if not is_valid_signature(self._settings.twilio_auth_token.reveal(), url, None, signature):
            return f"X-Twilio-Signature does not sign {url}"
        return None

    async def _admit(self, socket: ASGIMessageSocket, protocol: TwilioMediaProtocol) -> Start | None:
        timeout = self._settings.stream_start_timeout_s
        try:
            with trio.fail_after(timeout):
                start = await _receive_start(socket, protocol)
        except trio.TooSlowError:
            await _refuse(socket, f"no start event within {timeout:g} s", CloseCode.POLICY_VIOLATION)
            return None
        except RemoteProtocolError as exc:
            await _refuse(socket, exc.reason, exc.close_code)
            return None
        except SocketClosed:
            log.info("stream.closed_before_start")
            return None
        token = start.custom_parameters.get("token", "")
        redemption = self._tokens.redeem(token, start.call_sid) if token else Redemption.UNKNOWN
        if redemption is not Redemption.ACCEPTED:
            reason = "missing stream token" if not token else f"stream token {redemption.value}"
            await _refuse(socket, reason, CloseCode.POLICY_VIOLATION, call_sid=start.call_sid)
            return None
        return start


def _summary_extras(record: CallRecord | None) -> dict[str, Any]:
    """What the summary adds from the registry (numbers are masked by the log pipeline)."""
    if record is None:
        return {"direction": "inbound", "from": "", "to": ""}
    return {"direction": record.direction, "from": record.from_number, "to": record.to_number}


async def _receive_start(socket: ASGIMessageSocket, protocol: TwilioMediaProtocol) -> Start:
    while True:
        event = protocol.receive(await socket.receive())
        if isinstance(event, Start):
            return event


async def _refuse(socket: ASGIMessageSocket, reason: str, code: CloseCode, **context: str) -> None:
    log.warning("stream.rejected", reason=reason, close_code=int(code), **context)
    await socket.close(code, reason[:120])


async def _refuse_upgrade(send: ASGISendCallable, status: int, reason: str) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8")]
    await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": reason.encode(), "more_body": False})


def _header(scope: WebsocketScope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _client(scope: WebsocketScope) -> str:
    client = scope["client"]
    return f"{client[0]}:{client[1]}" if client else "unknown"
