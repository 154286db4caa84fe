"""The media WebSocket endpoint, `/twilio/media`, served on the raw socket.

The front door (`gateway.net.front_door`) hands this endpoint every connection whose request
line is `GET /twilio/media`; the upgrade is read and answered with `gateway.net.websocket`
rather than through hypercorn's ASGI WebSocket, because the media socket is the hot path
(ops/bench: about a third of the event-loop steps per frame).

Admission, in order, each failure logged with its reason:
1. the upgrade's `X-Twilio-Signature` must sign the public ws(s):// stream URL; otherwise
   HTTP 403 before the upgrade is accepted (Twilio logs 31920);
2. `start` must arrive within a bounded time (`connected` may precede it);
3. `start.customParameters.token` must redeem a one-time token minted for this CallSid;
4. in a fleet, the token must not have been redeemed on another instance, and the call
   must have no live stream elsewhere (`StreamGuard`).
Failures after the upgrade close with 1008 (policy), or with the code of the protocol
error that caused them. Then the call runs under its own supervisor.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import structlog
import trio

from actors.errors import CloseCode, RemoteProtocolError
from actors.message_socket import MessageSocket, SocketClosed
from actors.messages import EndReason
from actors.supervisor import CallSupervisor
from actors.twilio_media import Start, TwilioMediaProtocol
from gateway.calls.handoff import Handoff, Handoffs
from gateway.calls.ledger import CallLedger
from gateway.calls.live import LiveCalls
from gateway.calls.registry import CallRecord, RegistryUnavailable
from gateway.calls.stream_guard import StreamGuard
from gateway.net.transport import RawSocketTransport
from gateway.net.websocket import LeanWebSocket
from gateway.net.ws_server import Upgrade, read_upgrade
from gateway.observability.metrics import GatewayMetrics
from gateway.settings import Settings
from gateway.twilio.signature import is_valid_signature
from gateway.twilio.stream_tokens import Redemption, StreamTokens

log = structlog.get_logger("gateway.media")

MAX_MESSAGE_BYTES = 1 << 20  # a Twilio media message is about 400 bytes
LEDGER_SECONDS = 5.0  # the longest a call's end may wait for its record to be written


NewCall = Callable[
    [Start, MessageSocket, TwilioMediaProtocol, CallRecord | None, Handoff | None], CallSupervisor
]


class MediaEndpoint:
    """Admits media streams; `new_call` builds each admitted call's supervisor."""

    def __init__(
        self,
        settings: Settings,
        tokens: StreamTokens,
        *,
        calls: LiveCalls,
        ledger: CallLedger,
        metrics: GatewayMetrics,
        new_call: NewCall,
        guard: StreamGuard | None = None,
        handoffs: Handoffs | None = None,
    ) -> None:
        self._settings = settings
        self._guard = guard
        self._handoffs = handoffs
        self._tokens = tokens
        self._calls = calls
        self._ledger = ledger
        self._metrics = metrics
        self._new_call = new_call

    async def serve(self, transport: RawSocketTransport, client: str, head: bytes = b"") -> None:
        """One connection whose request line is the media path (`head`: the bytes the front
        door already read): the upgrade, then the call."""
        upgrade = None
        with trio.move_on_after(self._settings.stream_start_timeout_s):
            upgrade = await read_upgrade(transport, max_size=MAX_MESSAGE_BYTES, head=head)
        if upgrade is None:
            await transport.aclose()
            return
        refusal = self._check_signature(upgrade)
        if refusal is not None:
            log.warning("stream.rejected", reason=refusal, client=client)
            await upgrade.refuse(403, refusal)
            return
        socket = await upgrade.accept()
        if socket is None:
            return
        try:
            await self._run_stream(socket)
        finally:
            await socket.close()

    async def _run_stream(self, socket: LeanWebSocket) -> None:
        protocol = TwilioMediaProtocol()
        start = await self._admit(socket, protocol)
        if start is None:
            return
        sid = start.call_sid
        record = await self._ledger.record(sid)
        handoff = await self._take_handoff(sid)
        supervisor = self._new_call(start, socket, protocol, record, handoff)
        self._calls.add(supervisor)
        end_reason = "cancelled"
        try:  # from here on the call leaves the live table whatever happens
            if record is not None and record.answered_at is not None and handoff is None:
                self._metrics.call_setup.observe(max(0.0, time.time() - record.answered_at))
            await self._ledger.live(sid, start.stream_sid)
            end_reason = (await supervisor.run()).end.reason.value
        finally:
            self._metrics.call_ended(supervisor)  # before leaving LiveCalls: counted exactly once
            self._calls.remove(supervisor)
            with trio.move_on_after(LEDGER_SECONDS, shield=True):
                if end_reason != EndReason.MOVED:  # a moved call: its next instance takes the record
                    await self._ledger.ended(sid, end_reason)
                await self._release(start)

    def _check_signature(self, upgrade: Upgrade) -> str | None:
        signatures = upgrade.header("X-Twilio-Signature")
        if len(signatures) != 1:
            return (
                "missing X-Twilio-Signature" if not signatures else "X-Twilio-Signature sent more than once"
            )
        signature = signatures[0]
        url = self._settings.stream_url
        _, question, query = upgrade.request.path.partition("?")
        if question:
            url += "?" + query
        if not is_valid_signature(self._settings.twilio_auth_token.reveal(), url, None, signature):
            return f"X-Twilio-Signature does not sign {url}"
        return None

    async def _admit(self, socket: MessageSocket, protocol: TwilioMediaProtocol) -> Start | None:
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
        if self._guard is not None:
            nonce, expires_at = StreamTokens.nonce(token)
            refusal = await self._guard.admit(start.call_sid, start.stream_sid, nonce, expires_at)
            if refusal is not None:
                await _refuse(socket, refusal, CloseCode.POLICY_VIOLATION, call_sid=start.call_sid)
                return None
        return start

    async def _take_handoff(self, call_sid: str) -> Handoff | None:
        """The conversation of a call moved here, if it was; without Redis, a fresh start."""
        if self._handoffs is None:
            return None
        try:
            return await self._handoffs.take(call_sid)
        except RegistryUnavailable:
            return None

    async def _release(self, start: Start) -> None:
        if self._guard is None:
            return
        with contextlib.suppress(RegistryUnavailable):  # else it lapses a few heartbeats later
            await self._guard.release(start.call_sid, start.stream_sid)


async def _receive_start(socket: MessageSocket, protocol: TwilioMediaProtocol) -> Start:
    while True:
        event = protocol.receive(await socket.receive())
        if isinstance(event, Start):
            return event


async def _refuse(socket: MessageSocket, reason: str, code: CloseCode, **context: str) -> None:
    log.warning("stream.rejected", reason=reason, close_code=int(code), **context)
    await socket.close(code, reason[:120])
