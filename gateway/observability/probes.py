"""Probes and the metrics scrape: `/healthz`, `/readyz`, `/metrics`.

`GET /healthz` says the process is alive; `GET /readyz` whether it takes calls (503 with
the reason otherwise, so a load balancer sends new calls elsewhere); `GET /metrics` is
the Prometheus exposition, behind a bearer token (`GATEWAY_METRICS_TOKEN`; open without
one only in development mode).
"""

from __future__ import annotations

import secrets

from quart import Blueprint, Response, request

from gateway.calls.admission import Admission, Refusal
from gateway.observability.metrics import CONTENT_TYPE, GatewayMetrics
from gateway.settings import Settings


def probes_blueprint(settings: Settings, admission: Admission, metrics: GatewayMetrics) -> Blueprint:
    app = Blueprint("probes", __name__)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> tuple[dict[str, object], int]:
        refusal = admission.refusal()
        body: dict[str, object] = {"in_flight": admission.in_flight, "max_calls": admission.max_calls}
        if refusal is None:
            return {"status": "ready", **body}, 200
        detail = admission.overload() if refusal is Refusal.OVERLOADED else None
        return {
            "status": "not_ready",
            "reason": refusal.value,
            **body,
            **({"detail": detail} if detail else {}),
        }, 503

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        refusal = _metrics_refusal(settings)
        if refusal is not None:
            return _text(refusal, 401)
        return Response(metrics.render(), 200, content_type=CONTENT_TYPE)

    return app


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


def _text(message: str, status: int) -> Response:
    return Response(message + "\n", status, content_type="text/plain; charset=utf-8")
