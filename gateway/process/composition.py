"""The composition root: the one module that knows every subsystem and builds the parts.

`Gateway` holds what one process shares between its calls (the live-call table, the
registry and its ledger, admission, the event bus, metrics, stream tokens, the AI
connector, and in a fleet its Redis side) and wires them into the control plane (a
quart-trio app of the Twilio webhook, probe and admin blueprints, served by hypercorn)
and the media endpoint (which the front door feeds on the raw socket). Every call's
supervisor is built here too.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from functools import partial
from typing import Any

import httpx2
import structlog
import trio
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope
from quart_trio import QuartTrio

from actors.conversation import Turn
from actors.message_socket import MessageSocket
from actors.supervisor import CallSupervisor
from actors.twilio_media import Start, TwilioMediaProtocol
from gateway.admin.operations import CallOperations
from gateway.admin.rest import admin_blueprint
from gateway.ai.call_settings import call_settings
from gateway.ai.connector import RealtimeConnector
from gateway.ai.endpoints import RealtimeEndpoint
from gateway.ai.local_agent import AgentOptions, serve_local_agent
from gateway.calls.admission import Admission
from gateway.calls.drain import Drain
from gateway.calls.event_bus import CallEventSink, EventBus
from gateway.calls.handoff import Handoff
from gateway.calls.ledger import CallLedger
from gateway.calls.live import LiveCalls
from gateway.calls.registry import CallRecord, CallRegistry, InMemoryRegistry, RegistryUnavailable
from gateway.fleet.node import Fleet
from gateway.net.transport import RawSocketTransport
from gateway.observability.loop_monitor import LoopMonitor
from gateway.observability.metrics import FleetFigures, GatewayMetrics
from gateway.observability.probes import probes_blueprint
from gateway.settings import Settings
from gateway.twilio.media_endpoint import MediaEndpoint
from gateway.twilio.rest import TwilioCallControl, TwilioRest
from gateway.twilio.stream_tokens import StreamTokens
from gateway.twilio.webhooks import twilio_blueprint

log = structlog.get_logger("gateway")

MAX_REQUEST_BYTES = 64 * 1024  # a voice webhook is a few hundred bytes of form fields


class Gateway:
    """The ASGI application and everything one process shares between its calls."""

    def __init__(self, settings: Settings, ai: RealtimeConnector, rest: TwilioRest | None) -> None:
        self.settings = settings
        self.ai = ai
        self._rest = rest
        key = settings.stream_token_key.reveal().encode() or None  # None: a random key of our own
        self.tokens = StreamTokens(settings.stream_token_ttl_s, key)
        self.calls = LiveCalls()
        self.bus = EventBus(settings.instance_id)
        self.drain = Drain()
        self.fleet = Fleet(settings, self.calls, self.bus, self.drain) if settings.redis_url else None
        self.registry: CallRegistry = (
            self.fleet.registry if self.fleet else InMemoryRegistry(settings.registry_retention_s)
        )
        self.ledger = CallLedger(self.registry, self.bus, settings.instance_id)
        self.load = LoopMonitor(settings.max_loop_lag_ms, settings.max_cpu_share)
        self.admission = Admission(
            settings.max_calls, self.calls, self.tokens.outstanding, self.drain, self.load.overloaded
        )
        self.metrics = GatewayMetrics(
            self.calls,
            max_calls=settings.max_calls,
            admin_clients=lambda: len(self.bus),
            ready=self.admission.ready,
            draining=lambda: self.drain.draining,
            load=self.load,
        )
        self.operations = CallOperations(
            settings,
            ledger=self.ledger,
            live=self.calls,
            admission=self.admission,
            rest=rest,
            fleet=self.fleet.messenger if self.fleet else None,
            members=self.fleet.members if self.fleet else None,
        )
        if self.fleet is not None:
            self.fleet.messenger.handler = self.operations.run_forwarded
            self.metrics.watch_fleet(self._fleet_figures)
        self._call_settings = call_settings(settings, ai.endpoint.dialect)
        self._control = self._control_plane()
        self._media = MediaEndpoint(
            settings,
            self.tokens,
            calls=self.calls,
            ledger=self.ledger,
            metrics=self.metrics,
            new_call=self._new_call,
            guard=self.fleet.streams if self.fleet else None,
            handoffs=self.fleet.handoffs if self.fleet else None,
        )

    def _fleet_figures(self) -> FleetFigures:
        assert self.fleet is not None
        return FleetFigures(
            redis_up=self.fleet.link.up,
            records_lost=self.ledger.records_lost,
            events_dropped=self.fleet.messenger.events_dropped,
            streams_unguarded=self.fleet.streams.unguarded,
        )

    def _control_plane(self) -> QuartTrio:
        settings = self.settings
        app = QuartTrio(__name__)
        app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
        prewarm = self.ai.prewarm if settings.ai_prewarm else None
        app.register_blueprint(
            twilio_blueprint(
                settings,
                self.tokens,
                self.ledger,
                self.admission,
                self.metrics,
                on_call=prewarm,
                handoffs=self.fleet.handoffs if self.fleet else None,
            )
        )
        app.register_blueprint(probes_blueprint(settings, self.admission, self.metrics))
        app.register_blueprint(admin_blueprint(settings, self.operations, self.bus))
        return app

    def _new_call(
        self,
        start: Start,
        socket: MessageSocket,
        protocol: TwilioMediaProtocol,
        record: CallRecord | None,
        handoff: Handoff | None,
    ) -> CallSupervisor:
        sid = start.call_sid
        extras = _summary_extras(record)
        events = CallEventSink(self.bus, sid, extras["direction"], self.metrics.on_call_event)
        control = TwilioCallControl(self._rest, sid) if self._rest is not None else None
        call_settings = self._call_settings
        if handoff is not None:  # moved here: the conversation goes on, no second greeting
            extras["moved_from"] = handoff.from_instance
            call_settings = dataclasses.replace(
                call_settings, ai=dataclasses.replace(call_settings.ai, greet_first=False)
            )
        return CallSupervisor(
            start,
            socket,
            protocol,
            self.ai.for_call(sid),
            call_settings,
            control=control,
            events=events,
            summary_extras=extras,
            resumed=list(handoff.turns) if handoff else None,
        )

    async def move_calls_on_drain(self) -> None:
        """In a fleet, once a drain starts, move every live call to another instance at its
        next turn boundary (when another instance serves; else they stay and drain)."""
        if self.fleet is None:
            return
        await self.drain.started.wait()
        if not await self.fleet.others_serving():
            log.warning("fleet.no_move_target", live_calls=len(self.calls))
            return
        for call in self.calls:
            call.move(partial(self._save_handoff, call.start.call_sid), self.settings.fleet_move_deadline_s)

    async def _save_handoff(self, call_sid: str, turns: list[Turn]) -> bool:
        assert self.fleet is not None
        handoff = Handoff(
            call_sid, tuple((t.role, t.text) for t in turns), self.settings.instance_id, time.time()
        )
        try:
            await self.fleet.handoffs.save(handoff)
        except RegistryUnavailable:
            return False
        return True

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        await self._control(scope, receive, send)

    async def serve_media(self, transport: RawSocketTransport, client: str, head: bytes) -> None:
        await self._media.serve(transport, client, head)

    async def publish_metrics(self, every_seconds: float = 5.0) -> None:
        """A `metrics` event for admin subscribers, every few seconds."""
        while True:
            await trio.sleep(every_seconds)
            if len(self.bus):
                try:
                    states = Counter(record.state.value for record in await self.registry.list())
                except RegistryUnavailable:
                    states = Counter()
                self.bus.publish(
                    "metrics",
                    {
                        "live_calls": len(self.calls),
                        "calls_by_state": dict(states),
                        "admin_clients": len(self.bus),
                        "draining": self.drain.draining,
                    },
                )


def _summary_extras(record: CallRecord | None) -> dict[str, Any]:
    """What the summary adds from the registry (numbers are masked by the log pipeline)."""
    if record is None:
        return {"direction": "inbound", "from": "", "to": ""}
    return {"direction": record.direction, "from": record.from_number, "to": record.to_number}


def twilio_rest(settings: Settings, http: httpx2.AsyncClient) -> TwilioRest | None:
    """REST needs an account: without TWILIO_ACCOUNT_SID, an AI hang-up just closes the stream."""
    if not settings.twilio_account_sid:
        return None
    return TwilioRest(
        http, settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_api_base_url
    )


async def ai_endpoint(settings: Settings, nursery: trio.Nursery) -> RealtimeEndpoint:
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


async def ai_connector(settings: Settings, nursery: trio.Nursery) -> RealtimeConnector:
    """The connector to the configured provider (the local agent is started in `nursery`)."""
    endpoint = await ai_endpoint(settings, nursery)
    return RealtimeConnector(
        endpoint,
        nursery,
        connect_timeout=settings.ai_connect_timeout_s,
        prewarm_seconds=settings.ai_prewarm_seconds,
        prewarm_max=settings.ai_prewarm_max,
    )
