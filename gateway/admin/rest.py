"""The admin REST API under `/admin`, its OpenAPI document, and the admin WebSocket route.

Every request needs `Authorization: Bearer <GATEWAY_ADMIN_TOKEN>` (compared in constant
time); without one the answer is 401 and nothing else happens. Errors are JSON
`{"error": {"code", "message"}}` with the status the code maps to (400, 404, 409, 501,
502 with Twilio's code, 503).
"""

from __future__ import annotations

from typing import Any

import orjson
import structlog
from quart import Blueprint, Response, jsonify, request, websocket

from gateway.admin.control_ws import AdminSession, authorized
from gateway.admin.openapi import OPENAPI
from gateway.admin.operations import CallOperations, OperationError
from gateway.calls.event_bus import EventBus
from gateway.settings import Settings

log = structlog.get_logger("gateway.admin.rest")


def admin_blueprint(settings: Settings, operations: CallOperations, bus: EventBus) -> Blueprint:
    admin = Blueprint("admin", __name__, url_prefix="/admin")

    @admin.before_request
    async def require_token() -> Response | None:
        if authorized(settings, request.headers.get("Authorization")):
            return None
        reason = "missing or wrong bearer token"
        if not settings.admin_token:
            reason = "set GATEWAY_ADMIN_TOKEN to enable the admin API"
        log.warning("admin.rejected", path=request.path, reason=reason)
        return _error(OperationError("unauthorized", f"unauthorized: {reason}"), 401)

    @admin.get("/calls")
    async def list_calls() -> Response:
        args = request.args
        return await _run(operations.list_calls(args.get("state"), args.get("direction")), key="calls")

    @admin.get("/calls/<call_sid>")
    async def get_call(call_sid: str) -> Response:
        return await _run(operations.get_call(call_sid))

    @admin.post("/calls")
    async def originate() -> Response:
        body = await _body()
        if isinstance(body, Response):
            return body
        return await _run(operations.originate(body.get("to", ""), body.get("from")), status=201)

    @admin.post("/calls/<call_sid>/hangup")
    async def hang_up(call_sid: str) -> Response:
        return await _run(operations.hang_up(call_sid))

    @admin.post("/calls/<call_sid>/transfer")
    async def transfer(call_sid: str) -> Response:
        body = await _body()
        if isinstance(body, Response):
            return body
        return await _run(operations.transfer(call_sid, body.get("to", "")))

    @admin.post("/calls/<call_sid>/say")
    async def say(call_sid: str) -> Response:
        body = await _body()
        if isinstance(body, Response):
            return body
        return await _run(operations.say(call_sid, body.get("text", "")), status=202)

    @admin.post("/drain")
    async def drain() -> Response:
        body = await _body(optional=True)
        if isinstance(body, Response):
            return body
        return await _run(operations.start_drain(body.get("instance")), status=202)

    @admin.get("/instances")
    async def instances() -> Response:
        return await _run(operations.list_instances(), key="instances")

    @admin.get("/openapi.json")
    async def openapi() -> Response:
        return jsonify(OPENAPI)

    @admin.websocket("/ws")
    async def admin_ws() -> Any:
        header = websocket.headers.get("Authorization")
        if header is not None and not authorized(settings, header):
            log.warning("admin.rejected", path="/admin/ws", reason="bad token")
            return Response("unauthorized\n", 401)  # before accept: hypercorn answers the upgrade with 401
        await websocket.accept()
        await AdminSession(settings, operations, bus).run(authenticated=header is not None)
        return None

    return admin


async def _body(*, optional: bool = False) -> dict[str, Any] | Response:
    # Parsed from bytes: quart's get_json decodes the body as UTF-8 first and lets a
    # UnicodeDecodeError through as a 500 (found by make fuzz).
    data = await request.get_data(as_text=False)
    if optional and not data.strip():
        return {}
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        return _error(OperationError("bad_request", "the body must be a JSON object"), 400)
    return body


async def _run(operation: Any, *, status: int = 200, key: str | None = None) -> Response:
    try:
        data = await operation
    except OperationError as exc:
        return _error(exc, exc.http_status)
    response = jsonify({key: data} if key else data)
    response.status_code = status
    return response


def _error(exc: OperationError, status: int) -> Response:
    response = jsonify({"error": exc.as_dict()})
    response.status_code = status
    return response
