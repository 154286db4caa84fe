"""The gateway process: one port for both planes, the local agent, signals and shutdown.

`Gateway` holds what one process shares between its calls; it is the ASGI application
of the control plane (quart-trio on hypercorn). `serve` binds the listening socket itself
(so port 0 works and accepted sockets inherit `TCP_USER_TIMEOUT`: a peer that stops
acknowledging is dropped by the kernel, trio-stack pitfall 1), starts the local agent
when it is the provider, and runs the front door: media streams to the media endpoint on
the raw socket, everything else to hypercorn (`gateway.net.front_door`).

Stopping is a drain. On SIGTERM or SIGINT (or `stop`), the process stops taking calls at
once (`/readyz` 503, webhooks decline politely) and keeps serving its live calls until
they end or `GATEWAY_DRAIN_SECONDS` pass; a second signal cuts the wait short. Then each
remaining call is ended in order: AI stopped, Twilio socket closed with 1001, summary
written. Only then is hypercorn told to stop (it would otherwise cut WebSockets with
1006 after its grace period). No call is ever cut by a bare cancel.
"""

from __future__ import annotations

import logging
import signal
import socket
from collections import Counter
from collections.abc import Awaitable
from functools import partial

import httpx2
import hypercorn.config
import structlog
import trio
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope

from actors.errors import CloseCode
from actors.messages import CallEnd, EndReason
from gateway.admin.operations import CallOperations
from gateway.admin.rest import admin_blueprint
from gateway.ai.call_settings import call_settings
from gateway.ai.connector import RealtimeConnector, RealtimeEndpoint
from gateway.ai.local_agent import AgentOptions, serve_local_agent
from gateway.calls.admission import Admission
from gateway.calls.drain import Drain
from gateway.calls.event_bus import EventBus
from gateway.calls.live import LiveCalls
from gateway.calls.registry import InMemoryRegistry
from gateway.net.front_door import FrontDoor
from gateway.net.hypercorn_handoff import serve_hypercorn
from gateway.net.transport import RawSocketTransport
from gateway.observability.metrics import GatewayMetrics
from gateway.settings import Settings
from gateway.twilio.media_endpoint import MediaEndpoint
from gateway.twilio.rest import TwilioRest
from gateway.twilio.stream_tokens import StreamTokens
from gateway.twilio.webhooks import create_control_plane

log = structlog.get_logger("gateway")

MEDIA_PATH = "/twilio/media"
# A peer that stops acknowledging data is dropped by the kernel after this long.
TCP_USER_TIMEOUT_MS = 10_000
CALL_END_GRACE_SECONDS = 5.0
LISTEN_BACKLOG = 1024


class Gateway:
    """The ASGI application and everything one process shares between its calls."""

    def __init__(self, settings: Settings, ai: RealtimeConnector, rest: TwilioRest | None) -> None:
        self.settings = settings
        key = settings.stream_token_key.reveal().encode() or None  # None: a random key of our own
        self.tokens = StreamTokens(settings.stream_token_ttl_s, key)
        self.calls = LiveCalls()
        self.registry = InMemoryRegistry(settings.registry_retention_s)
        self.bus = EventBus()
        self.drain = Drain()
        self.admission = Admission(settings.max_calls, self.calls, self.tokens, self.drain)
        self.metrics = GatewayMetrics(
            self.calls,
            max_calls=settings.max_calls,
            admin_clients=lambda: len(self.bus),
            ready=self.admission.ready,
            draining=lambda: self.drain.draining,
        )
        self.ai = ai
        self.operations = CallOperations(
            settings,
            registry=self.registry,
            bus=self.bus,
            live=self.calls,
            admission=self.admission,
            rest=rest,
        )
        prewarm = ai.prewarm if settings.ai_prewarm else None
        self._control = create_control_plane(
            settings, self.tokens, self.operations, self.admission, self.metrics, on_call=prewarm
        )
        self._control.register_blueprint(admin_blueprint(settings, self.operations, self.bus))
        self._media = MediaEndpoint(
            settings,
            self.tokens,
            ai=ai,
            calls=self.calls,
            call_settings=call_settings(settings, ai.endpoint.dialect),
            rest=rest,
            operations=self.operations,
            registry=self.registry,
            bus=self.bus,
            metrics=self.metrics,
        )

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        await self._control(scope, receive, send)

    async def serve_media(self, transport: RawSocketTransport, client: str) -> None:
        await self._media.serve(transport, client)

    async def publish_metrics(self, every_seconds: float = 5.0) -> None:
        """A `metrics` event for admin subscribers, every few seconds."""
        while True:
            await trio.sleep(every_seconds)
            if len(self.bus):
                states = Counter(record.state.value for record in await self.registry.list())
                self.bus.publish(
                    "metrics",
                    {
                        "live_calls": len(self.calls),
                        "calls_by_state": dict(states),
                        "admin_clients": len(self.bus),
                        "draining": self.drain.draining,
                    },
                )


async def serve(
    settings: Settings,
    *,
    stop: trio.Event | None = None,
    handle_signals: bool = True,
    task_status: trio.TaskStatus[Gateway] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the gateway until `stop` is set (or SIGINT/SIGTERM) and the drain is over;
    `task_status` gets the running Gateway."""
    stop = trio.Event() if stop is None else stop
    hurry = trio.Event()  # a second signal: end the remaining calls now
    listener = _listen(settings.host, settings.port)
    settings = settings.bound_to(listener.getsockname()[1])
    async with trio.open_nursery() as services, httpx2.AsyncClient(timeout=10) as http:
        if handle_signals:
            services.start_soon(_follow_signals, stop, hurry)
        endpoint = await _ai_endpoint(settings, services)
        connector = RealtimeConnector(
            endpoint,
            services,
            connect_timeout=settings.ai_connect_timeout_s,
            prewarm_seconds=settings.ai_prewarm_seconds,
            prewarm_max=settings.ai_prewarm_max,
        )
        gateway = Gateway(settings, connector, _twilio_rest(settings, http))
        services.start_soon(gateway.publish_metrics)
        hypercorn_stop = trio.Event()
        front = FrontDoor(listener, MEDIA_PATH, gateway.serve_media)
        async with trio.open_nursery() as connections:
            connections.start_soon(front.serve, connections)
            async with trio.open_nursery() as web:
                await web.start(
                    partial(
                        serve_hypercorn,
                        gateway,
                        _hypercorn_config(),
                        front.handoff,
                        shutdown_trigger=hypercorn_stop.wait,
                    )
                )
                _log_started(settings, endpoint)
                task_status.started(gateway)
                await stop.wait()
                await _drain(gateway, settings.drain_seconds, hurry)
                hypercorn_stop.set()
            connections.cancel_scope.cancel()  # streams that never became calls
        services.cancel_scope.cancel()
    log.info("gateway.stopped")


def _twilio_rest(settings: Settings, http: httpx2.AsyncClient) -> TwilioRest | None:
    """REST needs an account: without TWILIO_ACCOUNT_SID, an AI hang-up just closes the stream."""
    if not settings.twilio_account_sid:
        return None
    return TwilioRest(
        http, settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_api_base_url
    )


async def _ai_endpoint(settings: Settings, nursery: trio.Nursery) -> RealtimeEndpoint:
    if settings.ai_provider != "local":
        return RealtimeEndpoint.for_provider(settings)
    options = AgentOptions(
        speed=settings.local_agent_speed,
        drop_after_deltas=settings.local_agent_drop_after_deltas,
        drops=settings.local_agent_drops,
        expire_after_s=settings.local_agent_expire_after_s,
        accept_delay_ms=settings.local_agent_accept_delay_ms,
        read_delay_ms=settings.local_agent_read_delay_ms,
    )
    endpoint: RealtimeEndpoint = await nursery.start(serve_local_agent, settings.ai_model, options)
    return endpoint


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "TCP_USER_TIMEOUT"):  # Linux; accepted sockets inherit it
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, TCP_USER_TIMEOUT_MS)
    listener.bind((host, port))
    listener.listen(LISTEN_BACKLOG)
    return listener


def _hypercorn_config() -> hypercorn.config.Config:
    config = hypercorn.config.Config()
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")  # rendered as JSON by gateway.observability.logs
    config.graceful_timeout = 3.0
    config.websocket_max_message_size = 1024 * 1024
    return config


async def _follow_signals(stop: trio.Event, hurry: trio.Event) -> None:
    """The first SIGINT/SIGTERM starts the drain; the next ends the remaining calls now."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            action = "end_calls" if stop.is_set() else "drain"
            log.info("gateway.signal", signal=signal.Signals(signum).name, action=action)
            (hurry if stop.is_set() else stop).set()


async def _drain(gateway: Gateway, deadline_s: float, hurry: trio.Event) -> None:
    """Take no new calls; let live ones finish until the deadline (or `hurry`); end the rest."""
    gateway.drain.start("signal", len(gateway.calls), deadline_s)
    with trio.move_on_after(gateway.drain.remaining(deadline_s)):
        async with trio.open_nursery() as race:
            race.start_soon(_then_cancel, race.cancel_scope, _calls_over(gateway))
            race.start_soon(_then_cancel, race.cancel_scope, hurry.wait())
    if gateway.calls:
        cause = "second_signal" if hurry.is_set() else "deadline"
        log.warning("gateway.drain_deadline", live_calls=len(gateway.calls), cause=cause)
    log.info("gateway.stopping", live_calls=len(gateway.calls))
    end = CallEnd(EndReason.SHUTDOWN, "gateway stopping", CloseCode.GOING_AWAY)
    await gateway.calls.end_all(end, CALL_END_GRACE_SECONDS)


async def _calls_over(gateway: Gateway) -> None:
    """Until no call is live and none is on its way (answered, stream not up yet)."""
    while gateway.admission.in_flight:
        await gateway.calls.wait_idle()
        if gateway.admission.in_flight:
            await trio.sleep(0.1)  # an answered call's stream may still arrive


async def _then_cancel(scope: trio.CancelScope, waiting: Awaitable[object]) -> None:
    await waiting
    scope.cancel()


def _log_started(settings: Settings, endpoint: RealtimeEndpoint) -> None:
    log.info(
        "gateway.started",
        listen=f"{settings.host}:{settings.port}",
        voice_webhook=settings.public_url + "/twilio/voice",
        stream_url=settings.stream_url,
        ai_endpoint=endpoint.url,
        settings=settings.describe(),
    )
    if settings.development_mode:
        log.warning(
            "gateway.development_mode",
            detail="TWILIO_AUTH_TOKEN is unset: webhooks must be signed with the development token "
            "and only loopback addresses are served",
        )
