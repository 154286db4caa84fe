"""Serving: one port for both planes, the services, and the order things stop in.

`serve` binds the listening socket, starts the AI side (the local agent when it is the
provider), builds the `Gateway`, and runs the front door: media streams to the media
endpoint on the raw socket, everything else to hypercorn. Stopping is a drain
(`gateway.process.shutdown`); only after it is hypercorn told to stop (it would
otherwise cut WebSockets with 1006 after its grace period).
"""

from __future__ import annotations

import logging
from functools import partial

import httpx2
import hypercorn.config
import structlog
import trio

from gateway.ai.endpoints import RealtimeEndpoint
from gateway.net.front_door import DoorLimits, FrontDoor
from gateway.net.hypercorn_handoff import serve_hypercorn
from gateway.process.composition import Gateway, ai_connector, twilio_rest
from gateway.process.listener import listen
from gateway.process.shutdown import drain_calls
from gateway.process.signals import follow_signals
from gateway.settings import Settings

log = structlog.get_logger("gateway")

MEDIA_PATH = "/twilio/media"


async def serve(
    settings: Settings,
    *,
    stop: trio.Event | None = None,
    handle_signals: bool = True,
    reuse_port: bool = False,
    task_status: trio.TaskStatus[Gateway] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the gateway until `stop` is set (or SIGINT/SIGTERM) and the drain is over;
    `task_status` gets the running Gateway."""
    stop = trio.Event() if stop is None else stop
    hurry = trio.Event()  # a second signal: end the remaining calls now
    listener = listen(settings.host, settings.port, reuse_port=reuse_port)
    settings = settings.bound_to(listener.getsockname()[1])
    async with trio.open_nursery() as services, httpx2.AsyncClient(timeout=10) as http:
        if handle_signals:
            services.start_soon(follow_signals, stop, hurry)
        connector = await ai_connector(settings, services)
        gateway = Gateway(settings, connector, twilio_rest(settings, http))
        if gateway.fleet is not None:
            await services.start(gateway.fleet.run)
            services.start_soon(gateway.move_calls_on_drain)
        services.start_soon(gateway.publish_metrics)
        services.start_soon(gateway.load.run)
        hypercorn_stop = trio.Event()
        limits = DoorLimits(settings.max_connections, settings.max_pending_per_peer)
        door_socket = trio.SocketListener(trio.socket.from_stdlib_socket(listener))
        front = FrontDoor(door_socket, MEDIA_PATH, gateway.serve_media, limits)
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
                _log_started(settings, connector.endpoint)
                task_status.started(gateway)
                await stop.wait()
                await drain_calls(gateway, settings.drain_seconds, hurry)
                hypercorn_stop.set()
            connections.cancel_scope.cancel()  # streams that never became calls
        if gateway.fleet is not None:
            await gateway.fleet.leave()
        services.cancel_scope.cancel()
    log.info("gateway.stopped")


def _hypercorn_config() -> hypercorn.config.Config:
    config = hypercorn.config.Config()
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")  # rendered as JSON by gateway.observability.logs
    config.graceful_timeout = 3.0
    # A connection that stops sending (a request head never finished) is dropped instead of
    # held forever; the admin WebSocket answers heartbeats far more often than this.
    config.read_timeout = 60
    config.h11_max_incomplete_size = 16 * 1024
    config.websocket_max_message_size = 1024 * 1024
    return config


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
